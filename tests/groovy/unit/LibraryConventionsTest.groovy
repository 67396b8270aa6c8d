package unit

import harness.BasePipelineTest
import harness.PipelineAbort
import java.lang.reflect.Method
import org.junit.Test

/** Rules every step of the library follows (checked over all of vars/, not step by step). */
class LibraryConventionsTest extends BasePipelineTest {
    private List<String> stepNames() {
        return new File(helper.libraryRoot, 'vars').listFiles()
            .findAll { File f -> f.name.endsWith('.groovy') }
            .collect { File f -> f.name - '.groovy' }.sort()
    }

    private List<String> keysOf(String step) {
        Script s = loadScript("vars/${step}.groovy")
        java.lang.reflect.Field keys = s.getClass().getDeclaredField('KEYS')
        keys.accessible = true
        return keys.get(null) as List<String>
    }

    @Test
    void everyStepHasThePlannedNames() {
        // other steps may be added beside these (each is checked by the rules below)
        assert stepNames().containsAll(['mlcdApprove', 'mlcdBundle', 'mlcdDeploy', 'mlcdDoctor', 'mlcdPipeline',
                                        'mlcdPublish', 'mlcdRollback', 'mlcdSetup', 'mlcdSmokeTest', 'mlcdTest',
                                        'mlcdValidate'])
    }

    @Test
    void everyStepIsVoidCallOfAMap() {
        stepNames().each { String step ->
            Script s = loadScript("vars/${step}.groovy")
            Method call = s.getClass().getDeclaredMethod('call', Map)
            assert call.returnType == void.class: "${step}.call(Map) must return void"
            s.getClass().getDeclaredMethod('call')  // the default argument [:] makes call() exist too
        }
    }

    @Test
    void everyStepHasPlainTextHelpDocumentingEveryArgument() {
        stepNames().each { String step ->
            File help = new File(helper.libraryRoot, "vars/${step}.txt")
            assert help.isFile(): "vars/${step}.txt is missing"
            String text = help.text
            assert text.startsWith("${step}: ")
            assert !(text =~ /(?i)<\/?(p|b|i|a|br|ul|ol|li|code|pre|strong|em|div|span|tt|h[1-6])[\s>\/]/):
                "vars/${step}.txt has HTML; Jenkins shows it as plain text"
            keysOf(step).each { String key ->
                assert text =~ /(?m)^\s+${key}:\s/: "vars/${step}.txt does not document '${key}'"
            }
        }
    }

    /**
     * pipeline-groovy-lib UserDefinedGlobalVariable.java renders vars/NAME.txt through the configured
     * markup formatter: under Safe HTML a `<word>` is dropped as an unknown tag and line breaks collapse
     * into spaces; under the plain-text formatter it shows as written. So: no angle-bracket placeholder,
     * and every argument entry ends with a full stop, so entries stay apart when the lines run together.
     */
    @Test
    void helpReadsTheSameUnderSafeHtmlAndAsPlainText() {
        stepNames().each { String step ->
            String text = new File(helper.libraryRoot, "vars/${step}.txt").text
            assert !(text =~ /<[A-Za-z\/!]/): "vars/${step}.txt has a '<word>' that Safe HTML would drop"
            List<String> entries = []
            boolean inArgs = false
            text.readLines().each { String line ->
                if (line.startsWith('Arguments')) {
                    inArgs = true
                } else if (!line.trim()) {
                    inArgs = false
                } else if (inArgs && line =~ /^    \w+: /) {
                    entries << line.trim()
                } else if (inArgs) {
                    entries[-1] = "${entries[-1]} ${line.trim()}".toString()
                }
            }
            assert entries: "vars/${step}.txt has no argument list"
            entries.each { String e -> assert e.endsWith('.'): "vars/${step}.txt: '${e}' runs into the next entry" }
        }
    }

    @Test
    void everyStepRejectsAnUnknownKeyBeforeDoingAnything() {
        stepNames().each { String step ->
            String typo = keysOf(step)[0] + 'x'
            try {
                loadScript("vars/${step}.groovy").invokeMethod('call', [[(typo): 'v']] as Object[])
                assert false: "${step} accepted ${typo}"
            } catch (PipelineAbort e) {
                assert e.message.startsWith("${step}: unknown argument '${typo}' (did you mean '${keysOf(step)[0]}'?)")
            }
        }
        assert helper.calls('sh').isEmpty()
        assert helper.calls('pipeline').isEmpty()
    }

    @Test
    void libraryCodeAvoidsWhatTheSandboxOrCpsForbids() {
        List<File> files = []
        ['vars', 'src'].each { String d ->
            new File(helper.libraryRoot, d).eachFileRecurse { File f -> if (f.name.endsWith('.groovy')) { files << f } }
        }
        assert files.size() >= 13
        files.each { File f ->
            String text = f.text
            ['@Grab', 'Jenkins.instance', 'Jenkins.get', 'rawBuild', 'LibrariesAction', 'System.getenv'].each { String bad ->
                assert !text.contains(bad): "${f.name} uses ${bad}"
            }
            // sh scripts are constants: values reach the shell only through environment variables
            assert !(text =~ /sh\s*\(?\s*"/): "${f.name} passes a GString to sh"
            assert !(text =~ /command:\s*"/): "${f.name} builds an mlcd command line with a GString"
            // env[name] is DefaultGroovyMethods getAt/putAt, rejected by script-security: use env.getProperty(name)
            assert !(text =~ /env\s*\[/): "${f.name} subscripts env (rejected in the sandbox)"
        }
    }

    @Test
    void helpAndExamplesPinTheVersionOfResourcesVersionTxt() {
        String version = new File(helper.libraryRoot, 'resources/mlcd/version.txt').text.trim()
        List<File> files = new File(helper.libraryRoot, 'vars').listFiles().findAll { File f -> f.name.endsWith('.txt') } +
            ['examples/Jenkinsfile.team', 'examples/README.md', 'examples/churn/Jenkinsfile', 'docs/jenkins.md']
                .collect { String p -> new File(helper.libraryRoot, p) }
        int pins = 0
        files.each { File f ->
            (f.text =~ /mlcd@(\d+\.\d+\.\d+)/).each { List m ->
                pins++
                assert m[1] == version: "${f.name} pins mlcd@${m[1]}; resources/mlcd/version.txt is ${version}"
            }
        }
        assert pins >= 5
        assert new File(helper.libraryRoot, 'vars/mlcdPipeline.txt').text.contains("@Library('mlcd@${version}') _")
    }
}
