package org.mlcd.tooling;

import org.codehaus.groovy.control.Phases;
import org.codenarc.rule.AbstractAstVisitorRule;

/**
 * mlcd's own CodeNarc rule: a {@code @NonCPS} method of a pipeline script (a vars/ step or a Jenkinsfile)
 * must not call a pipeline step or a library global ({@code sh 'x'}, {@code mlcdDeploy(...)}) through an
 * implicit-this call. CodeNarc's CpsCallFromNonCpsMethod misses this case: such calls are dynamic, so it
 * finds no method to check.
 */
public class StepCallFromNonCpsMethodRule extends AbstractAstVisitorRule {

    private String name = "StepCallFromNonCpsMethod";
    private int priority = 2;

    @Override
    public String getName() {
        return name;
    }

    @Override
    public void setName(String name) {
        this.name = name;
    }

    @Override
    public int getPriority() {
        return priority;
    }

    @Override
    public void setPriority(int priority) {
        this.priority = priority;
    }

    @Override
    public int getCompilerPhase() {
        return Phases.SEMANTIC_ANALYSIS;
    }

    @Override
    protected Class<?> getAstVisitorClass() {
        return StepCallFromNonCpsMethodVisitor.class;
    }
}
