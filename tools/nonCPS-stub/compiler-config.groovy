// groovyc --configscript for mlcd's compile gate: the default imports Jenkins adds to pipeline code.
// groovy-cps makes @NonCPS resolvable without an import; pipeline-groovy-lib does the same for @Library.
import org.codehaus.groovy.control.customizers.ImportCustomizer

ImportCustomizer jenkinsImports = new ImportCustomizer()
jenkinsImports.addImports('com.cloudbees.groovy.cps.NonCPS', 'org.jenkinsci.plugins.workflow.libs.Library')
configuration.addCompilationCustomizers(jenkinsImports)
