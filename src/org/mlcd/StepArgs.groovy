package org.mlcd

import com.cloudbees.groovy.cps.NonCPS

/**
 * Checks the Map arguments of a step. Pure helpers: no pipeline step is called here,
 * so they are @NonCPS and safe in the sandbox.
 */
class StepArgs implements Serializable {
    private static final long serialVersionUID = 1L

    /** One line naming the step, the first unknown key and the closest valid key; null when all are valid. */
    @NonCPS
    static String unknownKey(String step, Map args, List<String> valid) {
        for (Object k : args.keySet()) {
            String key = String.valueOf(k)
            if (!valid.contains(key)) {
                String near = closest(key, valid)
                return "${step}: unknown argument '${key}' (did you mean '${near}'?); " +
                    "valid arguments: ${valid.join(', ')}"
            }
        }
        return null
    }

    /** One line naming the first required key that is missing or empty; null when all are given. */
    @NonCPS
    static String missingKey(String step, Map args, Map<String, String> required) {
        for (Map.Entry<String, String> r : required.entrySet()) {
            Object value = args.get(r.key)
            if (value == null || String.valueOf(value).trim().isEmpty()) {
                return "${step}: missing argument '${r.key}' (${r.value})"
            }
        }
        return null
    }

    /** The valid key nearest to `key` by edit distance (ties: the first declared). */
    @NonCPS
    static String closest(String key, List<String> valid) {
        String best = null
        int bestDistance = Integer.MAX_VALUE
        for (String candidate : valid) {
            int d = editDistance(key.toLowerCase(), candidate.toLowerCase())
            if (d < bestDistance) {
                best = candidate
                bestDistance = d
            }
        }
        return best
    }

    /** Levenshtein distance between two strings. */
    @NonCPS
    static int editDistance(String a, String b) {
        int[] previous = new int[b.length() + 1]
        int[] current = new int[b.length() + 1]
        for (int j = 0; j <= b.length(); j++) {
            previous[j] = j
        }
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1
                current[j] = Math.min(Math.min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost)
            }
            int[] swap = previous
            previous = current
            current = swap
        }
        return previous[b.length()]
    }
}
