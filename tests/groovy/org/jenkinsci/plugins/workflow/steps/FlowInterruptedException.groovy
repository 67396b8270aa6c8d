package org.jenkinsci.plugins.workflow.steps

/**
 * Test stand-in for workflow-step-api's FlowInterruptedException (FlowInterruptedException.java): what
 * `timeout`, an abort or a rejected `input` throw. Like the real one it carries a build result and
 * causes, and has no message (getMessage() is null).
 */
class FlowInterruptedException extends InterruptedException {
    private static final long serialVersionUID = 1L
    final String result
    final List<String> causes

    FlowInterruptedException(String result, List<String> causes) {
        super()
        this.result = result
        this.causes = causes
    }
}
