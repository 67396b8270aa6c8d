package harness

import net.sf.json.JSONArray
import net.sf.json.JSONNull
import net.sf.json.JSONObject
import net.sf.json.JSONSerializer

/**
 * `readJSON` as pipeline-utility-steps does it (ReadJSONStepExecution.java), with Jenkins' own json-lib
 * (Debian libjenkins-json-java): JSONSerializer.toJSON gives JSONObject/JSONArray, a JSON null is
 * JSONNull (truthy in Groovy) or a null JSONObject; `returnPojo: true` turns them into LinkedHashMap,
 * ArrayList and Java null.
 */
class JsonLib {
    static Object read(String text, boolean returnPojo) {
        Object json = JSONSerializer.toJSON(text.trim())
        return returnPojo ? pojo(json) : json
    }

    static Object pojo(Object value) {
        if (isNull(value)) {
            return null
        }
        if (value instanceof JSONArray) {
            List out = new ArrayList(((JSONArray) value).size())
            for (Object item : (JSONArray) value) {
                out.add(pojo(item))
            }
            return out
        }
        if (value instanceof JSONObject) {
            Map out = new LinkedHashMap()
            ((JSONObject) value).entrySet().each { Map.Entry e -> out.put(e.key, pojo(e.value)) }
            return out
        }
        return value
    }

    private static boolean isNull(Object value) {
        return value instanceof JSONNull || (value instanceof JSONObject && ((JSONObject) value).isNullObject())
    }
}
