package org.mlcd.tooling;

import org.codehaus.groovy.ast.ASTNode;
import org.codehaus.groovy.ast.ClassHelper;
import org.codehaus.groovy.ast.ModuleNode;
import org.codehaus.groovy.control.CompilePhase;
import org.codehaus.groovy.control.SourceUnit;
import org.codehaus.groovy.transform.ASTTransformation;
import org.codehaus.groovy.transform.GroovyASTTransformation;

/**
 * Global AST transformation for CodeNarc runs only: adds the imports Jenkins adds to every pipeline
 * script and library class ({@code NonCPS}, {@code Library}), so CodeNarc's compiler resolves
 * {@code @NonCPS} to {@code com.cloudbees.groovy.cps.NonCPS} exactly as Jenkins does.
 * CodeNarc builds its CompilationUnit without a CompilerConfiguration, so an ImportCustomizer cannot be
 * passed in; global transformations are still loaded from the analysis classpath.
 */
@GroovyASTTransformation(phase = CompilePhase.CONVERSION)
public final class JenkinsDefaultImports implements ASTTransformation {

    @Override
    public void visit(ASTNode[] nodes, SourceUnit source) {
        ModuleNode module = source.getAST();
        if (module == null) {
            return;
        }
        addImport(module, "NonCPS", "com.cloudbees.groovy.cps.NonCPS");
        addImport(module, "Library", "org.jenkinsci.plugins.workflow.libs.Library");
    }

    private static void addImport(ModuleNode module, String alias, String className) {
        if (module.getImport(alias) == null) {
            module.addImport(alias, ClassHelper.make(className));
        }
    }
}
