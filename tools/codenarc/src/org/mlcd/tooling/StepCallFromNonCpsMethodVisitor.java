package org.mlcd.tooling;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.HashSet;
import java.util.Set;
import org.codehaus.groovy.ast.AnnotationNode;
import org.codehaus.groovy.ast.ClassNode;
import org.codehaus.groovy.ast.MethodNode;
import org.codehaus.groovy.ast.expr.MethodCallExpression;
import org.codehaus.groovy.runtime.DefaultGroovyMethods;
import org.codenarc.rule.AbstractAstVisitor;

/** Visitor of {@link StepCallFromNonCpsMethodRule}. */
public class StepCallFromNonCpsMethodVisitor extends AbstractAstVisitor {

    private static final String NON_CPS = "com.cloudbees.groovy.cps.NonCPS";
    /** Names an implicit-this call may use in non-CPS code: the steps CodeNarc's own rule allows, plus GDK methods on Object. */
    private static final Set<String> ALLOWED = allowedNames();

    private MethodNode nonCpsMethod;

    private static Set<String> allowedNames() {
        Set<String> names = new HashSet<>(Set.of("echo", "properties", "getContext"));
        for (Method m : DefaultGroovyMethods.class.getMethods()) {
            Class<?>[] params = m.getParameterTypes();
            if (Modifier.isStatic(m.getModifiers()) && params.length > 0 && params[0] == Object.class) {
                names.add(m.getName());
            }
        }
        names.remove("sleep"); // in a pipeline, sleep is the step
        return names;
    }

    private static boolean isNonCps(MethodNode method) {
        for (AnnotationNode annotation : method.getAnnotations()) {
            if (NON_CPS.equals(annotation.getClassNode().getName())) {
                return true;
            }
        }
        return false;
    }

    private static boolean definedOn(ClassNode type, String name) {
        for (ClassNode c = type; c != null; c = c.getSuperClass()) {
            if (!c.getMethods(name).isEmpty()) {
                return true;
            }
        }
        return false;
    }

    @Override
    protected void visitMethodEx(MethodNode method) {
        nonCpsMethod = isNonCps(method) ? method : null;
    }

    @Override
    protected void visitMethodComplete(MethodNode method) {
        nonCpsMethod = null;
    }

    @Override
    public void visitMethodCallExpression(MethodCallExpression call) {
        ClassNode current = getCurrentClassNode();
        String name = call.getMethodAsString();
        if (nonCpsMethod != null && current != null && current.isScript() && call.isImplicitThis()
                && name != null && !ALLOWED.contains(name) && !definedOn(current, name)) {
            addViolation(call, "The pipeline step or library global " + name
                    + " may not be called from the non-CPS transformed method " + nonCpsMethod.getName()
                    + "; call it from CPS code and pass the result in");
        }
        super.visitMethodCallExpression(call);
    }
}
