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

JUnitCore core = new JUnitCore()
core.addListener(new RunListener() {
    @Override
    void testFailure(Failure failure) {
        println "FAIL ${failure.description.className}.${failure.description.methodName}: ${failure.message}"
    }

    @Override
    void testFinished(Description description) {
        print '.'
    }
})
Result result = core.run(classes as Class[])
println ''
result.failures.each { Failure f ->
    println "---- ${f.testHeader}"
    println f.trace.readLines().take(25).join('\n')
}
int passed = result.runCount - result.failureCount
println "Tests run: ${result.runCount}, Failures: ${result.failureCount}, Ignored: ${result.ignoreCount} (${classes.size()} classes)"
println "${passed} passed, ${result.failureCount} failed"
System.exit(result.wasSuccessful() && result.runCount > 0 ? 0 : 1)
