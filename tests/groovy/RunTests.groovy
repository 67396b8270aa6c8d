import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.Result
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener

/*
 * Runs every *Test.groovy under tests/groovy/<dirs given as arguments> with JUnit 4 and prints a
 * JUnit-style summary. Exit status: 0 only if every test passed.
 */
File root = new File('tests/groovy')
List<String> dirs = args ? args.toList() : ['unit', 'steps']
List<Class> classes = []
dirs.each { String d ->
    File dir = new File(root, d)
    if (!dir.isDirectory()) {
        System.err.println("no test directory ${dir}")
        System.exit(2)
    }
    dir.eachFileRecurse { File f ->
        if (f.name.endsWith('Test.groovy')) {
            String rel = f.path.substring(root.path.length() + 1) - '.groovy'
            classes << this.class.classLoader.loadClass(rel.replace(File.separator, '.'))
        }
    }
}
classes.sort { Class c -> c.name }

Map<String, List<Map>> cases = [:].withDefault { [] }
Map<String, Long> started = [:]
JUnitCore core = new JUnitCore()
core.addListener(new RunListener() {
    @Override
    void testStarted(Description description) {
        started[description.displayName] = System.currentTimeMillis()
    }

    @Override
    void testFailure(Failure failure) {
        println "FAIL ${failure.description.className}.${failure.description.methodName}: ${failure.message}"
        cases[failure.description.className] << [name: failure.description.methodName, failure: failure]
    }

    @Override
    void testFinished(Description description) {
        print '.'
        List<Map> mine = cases[description.className]
        Map existing = mine.find { Map c -> c.name == description.methodName }
        Map entry = existing ?: [name: description.methodName]
        entry.seconds = (System.currentTimeMillis() - started[description.displayName]) / 1000.0
        if (existing == null) {
            mine << entry
        }
    }
})
Result result = core.run(classes as Class[])
println ''
result.failures.each { Failure f ->
    println "---- ${f.testHeader}"
    println f.trace.readLines().take(25).join('\n')
}
String resultsDir = System.getenv('MLCD_TEST_RESULTS')
if (resultsDir) {
    // JUnit XML for the library's own Jenkinsfile (junit step), one file per test class
    File dir = new File(resultsDir, 'groovy')
    dir.mkdirs()
    cases.each { String cls, List<Map> tests ->
        StringWriter w = new StringWriter()
        groovy.xml.MarkupBuilder xml = new groovy.xml.MarkupBuilder(w)
        int failures = tests.count { Map t -> t.failure != null } as int
        xml.testsuite(name: cls, tests: tests.size(), failures: failures, errors: 0) {
            tests.each { Map t ->
                testcase(classname: cls, name: t.name, time: t.seconds ?: 0) {
                    if (t.failure != null) {
                        Failure f = t.failure as Failure
                        failure(message: String.valueOf(f.message).take(500), f.trace.readLines().take(40).join('\n'))
                    }
                }
            }
        }
        new File(dir, "TEST-${cls}.xml").setText('<?xml version="1.0" encoding="UTF-8"?>\n' + w, 'UTF-8')
    }
}
int passed = result.runCount - result.failureCount
println "Tests run: ${result.runCount}, Failures: ${result.failureCount}, Ignored: ${result.ignoreCount} (${classes.size()} classes)"
println "${passed} passed, ${result.failureCount} failed"
System.exit(result.wasSuccessful() && result.runCount > 0 ? 0 : 1)
