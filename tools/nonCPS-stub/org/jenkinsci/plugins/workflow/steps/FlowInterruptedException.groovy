package org.jenkinsci.plugins.workflow.steps

/** Compile-gate stand-in for workflow-step-api's FlowInterruptedException (what timeout and aborts throw). */
class FlowInterruptedException extends InterruptedException {
    private static final long serialVersionUID = 1L
}
