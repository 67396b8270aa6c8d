package org.mlcd

import com.cloudbees.groovy.cps.NonCPS

/**
 * Which builds may deploy past the first environment of mlcd.yaml: only builds of the release
 * branch that are not pull requests. Used by mlcdPipeline (to stop promoting) and by mlcdDeploy
 * (to refuse), so a hand-written pipeline cannot promote a feature branch or a pull request.
 * Pure helper: the caller passes env.CHANGE_ID, env.BRANCH_NAME and env.GIT_BRANCH.
 */
class Promotion implements Serializable {
    private static final long serialVersionUID = 1L

    /** Why this build may not deploy past the first environment, or null when it may. */
    @NonCPS
    static String blocker(String changeId, String branchName, String gitBranch, String releaseBranch) {
        if (changeId) {
            return "pull request ${changeId} deploys only to the first environment"
        }
        String branch = branchName ?: (gitBranch ? gitBranch.replaceFirst('^origin/', '') : null)
        if (!branch) {
            return 'the branch is unknown (use a multibranch job, or check out with GIT_BRANCH set) ' +
                'and deploys only to the first environment'
        }
        if (branch != releaseBranch) {
            return "branch '${branch}' is not the release branch '${releaseBranch}' " +
                'and deploys only to the first environment'
        }
        return null
    }

    /**
     * The branch of the running build: `branch` when the caller decided it (mlcdPipeline does, once, in
     * Setup, where the checkout's GIT_BRANCH is set), else BRANCH_NAME (multibranch, whole build), else
     * GIT_BRANCH (set by Declarative only inside a stage's agent, never in a scripted node).
     */
    static String branch(Object script, String branch) {
        Object e = script.env
        String name = branch ?: (String) e.BRANCH_NAME ?: (String) e.GIT_BRANCH
        return name ? name.replaceFirst('^origin/', '') : null
    }

    /** The same question for the running build, from `script.env` and the branch decided by the caller (or null). */
    static String blocker(Object script, String releaseBranch, String decidedBranch = null) {
        return blocker((String) script.env.CHANGE_ID, branch(script, decidedBranch), null, releaseBranch)
    }
}
