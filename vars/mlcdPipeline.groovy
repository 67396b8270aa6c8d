import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdPipeline'
@Field static final List<String> KEYS = ['config', 'credentials', 'artifactCredentialsId', 'agentLabel',
                                         'releaseBranch', 'submitter', 'approvalTimeoutMinutes', 'timeoutMinutes',
                                         'setup', 'rollbackOnFailure']
@Field static final String STATE = 'mlcd-state'
@Field static final String STATE_FILES = '.mlcd/**'

/*
 * The whole pipeline of a team, driven by mlcd.yaml.
 *
 * Why this shape: the environments come from mlcd.yaml, and a declarative pipeline cannot have a
 * number of stages that depends on data. So the fixed part is declarative: 'Release candidate' runs
 * Setup, Validate, Bundle and Publish as nested stages on one agent (one workspace). The
 * per-environment part runs in the 'Environments' stage, which has no agent, from script {} with
 * scripted stage() calls: 'Approve <env>' outside any agent (waiting for a person holds no
 * executor), then 'Deploy <env>', 'Test <env>' and/or 'Smoke <env>' inside node(agentLabel) and
 * lock('mlcd-<project>-<env>'). Scripted stages inside a declarative stage show in Stage View and
 * Pipeline Graph View and run the same in a trusted or untrusted (sandboxed) library.
 * The .mlcd directory (run record, bundle archive, audit trail) follows the build from agent to
 * agent with stash/unstash; mlcdSetup runs again on each agent (a no-op when the venv is current).
 */
void call(Map args = [:]) {
    String problem = StepArgs.unknownKey(STEP, args, KEYS)
    if (problem) {
        error(problem)
    }
    Map opts = [config: 'mlcd.yaml', credentials: [:], artifactCredentialsId: null, agentLabel: '',
                releaseBranch: 'main', submitter: null, approvalTimeoutMinutes: 60, timeoutMinutes: 240,
                setup: [:], rollbackOnFailure: true] + args
    Map state = [cfg: null, changed: []]

    pipeline {
        agent none
        options {
            disableConcurrentBuilds()
            timeout(time: opts.timeoutMinutes, unit: 'MINUTES')
        }
        stages {
            stage('Release candidate') {
                agent { label opts.agentLabel }
                stages {
                    stage('Setup') {
                        steps {
                            script {
                                dir(MlcdCli.OUT_DIR) {
                                    deleteDir()
                                }
                                mlcdSetup(opts.setup)
                                state.cfg = loadConfig(opts)
                            }
                        }
                    }
                    stage('Validate') {
                        steps {
                            script {
                                mlcdValidate(config: opts.config,
                                             credentialsId: credentialsFor(opts, state.cfg, 'design'))
                            }
                        }
                    }
                    stage('Bundle') {
                        steps {
                            script {
                                mlcdBundle(config: opts.config,
                                           credentialsId: credentialsFor(opts, state.cfg, 'design'))
                            }
                        }
                    }
                    stage('Publish') {
                        when {
                            expression { state.cfg.artifactRepository != null }
                        }
                        steps {
                            script {
                                mlcdPublish(config: opts.config, credentialsId: opts.artifactCredentialsId ?:
                                    credentialsFor(opts, state.cfg, 'artifacts'))
                            }
                        }
                    }
                }
                post {
                    always {
                        stash(name: STATE, includes: STATE_FILES, allowEmpty: true)
                    }
                }
            }
            stage('Environments') {
                steps {
                    script {
                        deployEnvironments(opts, state)
                    }
                }
            }
        }
    }
}

/** Load mlcd.yaml and check the credentials map names only known targets. */
Map loadConfig(Map opts) {
    Map cfg = MlcdConfig.load(this, opts.config as String, STEP)
    List<String> targets = ['design', 'artifacts'] + MlcdConfig.environmentNames(cfg)
    String problem = StepArgs.unknownKey("${STEP} credentials", opts.credentials as Map, targets)
    if (problem) {
        error(problem)
    }
    return cfg
}

/** Approve (when needed), deploy and test or smoke-test each environment in order; roll back on failure. */
void deployEnvironments(Map opts, Map state) {
    Map cfg = state.cfg
    List envs = cfg.environments
    String blocked = promotionBlocker(opts.releaseBranch as String)
    String phase = 'deploy'
    try {
        for (int i = 0; i < envs.size(); i++) {
            Map target = envs[i]
            if (i > 0 && blocked) {
                List<String> names = MlcdConfig.environmentNames(cfg)
                echo "${STEP}: ${blocked}; not deploying to ${names.subList(i, names.size()).join(', ')}"
                return
            }
            if (target.approval) {
                phase = 'approval'
                stage("Approve ${target.name}") {
                    mlcdApprove(config: opts.config, env: target.name, submitter: submitterFor(opts, target.name),
                                timeoutMinutes: opts.approvalTimeoutMinutes)
                }
                phase = 'deploy'
            }
            boolean passed = true
            onAgent(opts) {
                lock(resource: MlcdConfig.lockName(cfg, target.name)) {
                    stage("Deploy ${target.name}") {
                        mlcdDeploy(config: opts.config, env: target.name,
                                   credentialsId: credentialsFor(opts, cfg, target.name),
                                   artifactCredentialsId: opts.artifactCredentialsId)
                    }
                    state.changed << target.name
                    if (target.tests) {
                        stage("Test ${target.name}") {
                            mlcdTest(config: opts.config, env: target.name,
                                     credentialsId: credentialsFor(opts, cfg, target.name))
                        }
                        passed = outcome('test', target.name) != 'GATE_FAILED'
                    }
                    if (passed && target.smoke) {
                        stage("Smoke ${target.name}") {
                            mlcdSmokeTest(config: opts.config, env: target.name,
                                          credentialsId: credentialsFor(opts, cfg, target.name))
                        }
                    }
                }
            }
            if (!passed) {
                echo "${STEP}: tests failed on ${target.name}; not promoting this bundle further"
                rollBackChanged(opts, state, "tests failed on ${target.name}")
                return
            }
        }
    } catch (err) {
        if (phase == 'approval') {
            echo "${STEP}: not approved; environments already deployed keep this build's bundle"
        } else {
            rollBackChanged(opts, state, "build ${env.BUILD_NUMBER} failed: ${err.message}")
        }
        throw err
    }
}

/** Roll back, newest first, every environment this build changed (unless mlcd already did, or it is opted out). */
void rollBackChanged(Map opts, Map state, String reason) {
    if (opts.rollbackOnFailure == false || !state.changed) {
        return
    }
    List<String> names = []
    for (int i = state.changed.size() - 1; i >= 0; i--) {
        Map target = MlcdConfig.environment(state.cfg, state.changed[i] as String)
        if (target.rollbackOnFailure) {
            names << target.name
        } else {
            echo "${STEP}: ${target.name} has rollback_on_failure: false; leaving it as it is"
        }
    }
    if (!names) {
        return
    }
    onAgent(opts) {
        for (String name : names) {
            boolean done = outcome('deploy', name) == 'ROLLED_BACK' ||
                outcome('smoke', name) in ['ROLLED_BACK', 'ROLLBACK_FAILED']
            if (done) {
                echo "${STEP}: ${name} was already rolled back by mlcd"
                continue
            }
            lock(resource: MlcdConfig.lockName(state.cfg, name)) {
                stage("Rollback ${name}") {
                    catchError(buildResult: 'FAILURE', stageResult: 'FAILURE') {
                        mlcdRollback(config: opts.config, env: name, reason: reason,
                                     credentialsId: credentialsFor(opts, state.cfg, name))
                    }
                }
            }
        }
    }
}

/** Run body on an agent with this build's .mlcd state and the mlcd CLI; save the state afterwards. */
void onAgent(Map opts, Closure body) {
    node(opts.agentLabel as String) {
        dir(MlcdCli.OUT_DIR) {
            deleteDir()
        }
        unstash(STATE)
        mlcdSetup(opts.setup)
        try {
            body()
        } finally {
            stash(name: STATE, includes: STATE_FILES, allowEmpty: true)
        }
    }
}

/** Why this build may not deploy past the first environment (pull request, other branch), or null. */
String promotionBlocker(String releaseBranch) {
    if (env.CHANGE_ID) {
        return "pull request ${env.CHANGE_ID} deploys only to the first environment"
    }
    String branch = env.BRANCH_NAME ?: (env.GIT_BRANCH ? env.GIT_BRANCH.replaceFirst('^origin/', '') : null)
    if (!branch) {
        return 'the branch is unknown (use a multibranch job, or check out with GIT_BRANCH set)'
    }
    if (branch != releaseBranch) {
        return "branch '${branch}' is not the release branch '${releaseBranch}' " +
            'and deploys only to the first environment'
    }
    return null
}

/** The outcome in a stage file of this workspace, or null if mlcd wrote none. */
String outcome(String stage, String envName) {
    String file = MlcdCli.stageFile(stage, envName)
    if (!fileExists(file)) {
        return null
    }
    return readJSON(file: file).outcome
}

/** Credentials id for 'design', 'artifacts' or an environment: from `credentials`, else mlcd-<project>-<target>. */
String credentialsFor(Map opts, Map cfg, String target) {
    Map creds = (opts.credentials ?: [:]) as Map
    return creds[target] ?: MlcdConfig.defaultCredentialsId(cfg, target)
}

/** `submitter` is one comma-separated list for every environment, or a map environment -> list. */
String submitterFor(Map opts, String envName) {
    Object s = opts.submitter
    if (s instanceof Map) {
        return s[envName]
    }
    return s
}
