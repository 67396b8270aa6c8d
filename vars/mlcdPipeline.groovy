import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.MlcdStep
import org.mlcd.Promotion
import org.mlcd.StepArgs
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException

@Field static final String STEP = 'mlcdPipeline'
@Field static final List<String> KEYS = ['config', 'credentials', 'artifactCredentialsId', 'agentLabel',
                                         'releaseBranch', 'submitter', 'allowAnyApprover', 'approvalTimeoutMinutes',
                                         'timeoutMinutes', 'setup', 'rollbackOnFailure', 'timeouts']
@Field static final Map<String, Integer> TIMEOUTS = [deploy: 60, test: 120, smoke: 30]
@Field static final String STATE = 'mlcd-state'
@Field static final String STATE_FILES = '.mlcd/**'
@Field static final String BUNDLE = 'mlcd-bundle'
@Field static final String BUNDLE_FILES = '.mlcd/bundles/**'

/*
 * The whole pipeline of a team, driven by mlcd.yaml.
 *
 * Why this shape: the environments come from mlcd.yaml, and a declarative pipeline cannot have a
 * number of stages that depends on data. So the fixed part is declarative: 'Release candidate' runs
 * Setup, Validate, Bundle and Publish as nested stages on one agent (one workspace). The
 * per-environment part runs in the 'Environments' stage, which has no agent, from script {} with
 * scripted stage() calls: 'Approve <env>' outside any agent (waiting for a person holds no
 * executor), then lock('mlcd-<project>-<env>') and, inside it, node(agentLabel) for 'Deploy <env>',
 * 'Test <env>' and/or 'Smoke <env>' (waiting for the lock holds no executor either). Scripted stages
 * inside a declarative stage show in Stage View and Pipeline Graph View and run the same in a trusted
 * or untrusted (sandboxed) library.
 * The .mlcd state (run record, audit trail, stage files) and mlcd.yaml follow the build from agent to
 * agent with stash/unstash; the bundle archive is stashed once, apart, and unstashed only to deploy.
 * mlcdSetup runs again on each agent (a no-op when the venv is current). Files of the repository that
 * mlcd.yaml points to (a relative tls.ca_bundle) travel with the state: those agents have no checkout.
 * Time limits: `timeoutMinutes` bounds the release candidate stages; each deploy, test and smoke has
 * its own (`timeouts`, minutes); approval has approvalTimeoutMinutes; a rollback has none, so no
 * timeout can cut it short. The branch is decided once, in Setup (BRANCH_NAME, else the checkout's
 * GIT_BRANCH, which Declarative sets only there) and passed down.
 */
void call(Map args = [:]) {
    MlcdStep.checkArgs(this, STEP, args, KEYS, null)
    Map opts = [config: 'mlcd.yaml', credentials: [:], artifactCredentialsId: null, agentLabel: '',
                releaseBranch: 'main', submitter: null, allowAnyApprover: false, approvalTimeoutMinutes: 60,
                timeoutMinutes: 240, setup: [:], rollbackOnFailure: true] + args
    String badTimeout = StepArgs.unknownKey("${STEP} timeouts", (opts.timeouts ?: [:]) as Map,
                                            TIMEOUTS.keySet() as List)
    if (badTimeout) {
        error(badTimeout)
    }
    opts.timeouts = TIMEOUTS + ((opts.timeouts ?: [:]) as Map)
    Map state = [cfg: null, changed: [], rolledBack: [], branch: null, blocked: null]

    pipeline {
        agent none
        options {
            disableConcurrentBuilds()
        }
        stages {
            stage('Release candidate') {
                agent { label opts.agentLabel }
                options {
                    timeout(time: opts.timeoutMinutes, unit: 'MINUTES')
                }
                stages {
                    stage('Setup') {
                        steps {
                            script {
                                dir(MlcdCli.OUT_DIR) {
                                    deleteDir()
                                }
                                // first: on a pull request this puts the trusted mlcd.yaml in place
                                // before any credentials (index, DSS keys) are bound
                                state.cfg = loadConfig(opts)
                                // the only place where the checkout's GIT_BRANCH is set (CheckoutScript)
                                state.branch = Promotion.branch(this, null)
                                state.blocked = Promotion.blocker(this, opts.releaseBranch as String, state.branch)
                                mlcdSetup(opts.setup)
                            }
                        }
                    }
                    stage('Validate') {
                        steps {
                            script {
                                mlcdValidate([config: opts.config,
                                              credentialsId: credentialsFor(opts, state.cfg, 'design')] +
                                             signingArgs(opts, state.cfg))
                            }
                        }
                    }
                    stage('Bundle') {
                        steps {
                            script {
                                mlcdBundle([config: opts.config,
                                            credentialsId: credentialsFor(opts, state.cfg, 'design')] +
                                           signingArgs(opts, state.cfg))
                            }
                        }
                    }
                    stage('Publish') {
                        when {
                            expression { state.cfg.artifactRepository != null && !env.CHANGE_ID }
                        }
                        steps {
                            script {
                                mlcdPublish([config: opts.config, credentialsId: opts.artifactCredentialsId ?:
                                    credentialsFor(opts, state.cfg, 'artifacts')] + signingArgs(opts, state.cfg))
                            }
                        }
                    }
                }
                post {
                    always {
                        script {
                            stash(name: BUNDLE, includes: BUNDLE_FILES, allowEmpty: true)
                            stashState(opts)
                        }
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

/** Load mlcd.yaml; check the credentials map names only known targets and every approval has approvers. */
Map loadConfig(Map opts) {
    Map cfg = MlcdConfig.load(this, opts.config as String, STEP)
    List<String> targets = ['design', 'artifacts'] + MlcdConfig.environmentNames(cfg) +
        ['signing', 'signing-previous', 'approval']
    String problem = StepArgs.unknownKey("${STEP} credentials", opts.credentials as Map, targets)
    if (problem) {
        error(problem)
    }
    for (Object e : (List) cfg.environments) {
        Map target = (Map) e
        if (target.approval && !submitterFor(opts, target.name as String) && opts.allowAnyApprover != true) {
            error("${STEP}: ${target.name} needs approval but no submitter is given, so anyone who may build " +
                "this job could approve it (fix: submitter: 'release-managers' or [${target.name}: '...'], " +
                'or allowAnyApprover: true)')
        }
    }
    opts.carried = carriedFiles(cfg, opts.setup as Map)
    return cfg
}

/**
 * Repository files that stages on other agents (no checkout) need: those mlcd.yaml points to and a
 * relative setup.path (a wheel or a checkout of mlcd), as stash patterns.
 */
List<String> carriedFiles(Map cfg, Map setup) {
    List<String> files = new ArrayList<String>((List<String>) cfg.repositoryFiles)
    String path = setup?.path
    if (path && !path.startsWith('/')) {
        files << path << "${path}/**".toString()
    }
    return files
}

/** Approve (when needed), deploy and test or smoke-test each environment in order; roll back on failure. */
void deployEnvironments(Map opts, Map state) {
    Map cfg = state.cfg
    if (cfg == null) {
        error("${STEP}: this build was restarted from stage 'Environments', but what the release candidate " +
            'stages decided (mlcd.yaml, the branch, the bundle) is not kept across a restart ' +
            '(fix: run a new build; to deploy an earlier bundle again use mlcdDeploy in a build of its own)')
    }
    List envs = cfg.environments
    String blocked = state.blocked
    String phase = 'deploy'
    String current = 'deploy'
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
                    mlcdApprove([config: opts.config, env: target.name, submitter: submitterFor(opts, target.name),
                                 timeoutMinutes: opts.approvalTimeoutMinutes, allowAnyApprover: opts.allowAnyApprover] +
                                approvalArgs(opts, cfg))
                }
                phase = 'deploy'
            }
            boolean passed = true
            lock(resource: MlcdConfig.lockName(cfg, target.name)) {
                onAgent(opts, true) {
                    try {
                        current = "deploy to ${target.name}"
                        stage("Deploy ${target.name}") {
                            bounded(opts, 'deploy') {
                                mlcdDeploy([config: opts.config, env: target.name, releaseBranch: opts.releaseBranch,
                                            branch: state.branch, credentialsId: credentialsFor(opts, cfg, target.name),
                                            artifactCredentialsId: opts.artifactCredentialsId] +
                                           approvalArgs(opts, cfg))
                            }
                        }
                        state.changed << target.name
                        if (target.tests) {
                            current = "tests of ${target.name}"
                            stage("Test ${target.name}") {
                                bounded(opts, 'test') {
                                    mlcdTest([config: opts.config, env: target.name,
                                              credentialsId: credentialsFor(opts, cfg, target.name)] +
                                             signingArgs(opts, cfg))
                                }
                            }
                            // GATE_FAILED, ROLLED_BACK (exit 3) ... : the tests did not pass
                            passed = outcome('test', target.name) in [null, 'SUCCESS', 'NOOP']
                        }
                        if (passed && target.smoke) {
                            current = "smoke test of ${target.name}"
                            stage("Smoke ${target.name}") {
                                bounded(opts, 'smoke') {
                                    mlcdSmokeTest([config: opts.config, env: target.name,
                                                   credentialsId: credentialsFor(opts, cfg, target.name)] +
                                                  signingArgs(opts, cfg))
                                }
                            }
                        }
                    } finally {
                        if (rolledBackByMlcd(target.name as String)) {
                            state.rolledBack << target.name
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
            rollBackChanged(opts, state, failureReason(opts, err, current))
        }
        throw err
    }
}

/**
 * Why the build stopped, for the rollback's audit record: the error's message, or, for an interruption
 * (an abort or a timeout: FlowInterruptedException, which has no message), what was running and its limit.
 */
String failureReason(Map opts, Throwable err, String current) {
    if (err instanceof FlowInterruptedException) {
        String kind = current.startsWith('deploy') ? 'deploy' : (current.startsWith('tests') ? 'test' : 'smoke')
        return "build ${env.BUILD_NUMBER} was aborted, or timed out (timeouts.${kind}: " +
            "${opts.timeouts[kind]} minutes), during the ${current}"
    }
    return "build ${env.BUILD_NUMBER} failed: ${err.message ?: err.toString()}"
}

/** Run body under the time limit of `kind` (deploy, test or smoke) from opts.timeouts. */
void bounded(Map opts, String kind, Closure body) {
    timeout(time: opts.timeouts[kind] as int, unit: 'MINUTES') {
        body()
    }
}

/**
 * Whether mlcd itself rolled `name` back (or tried to) in this workspace: deploy, test or smoke. Informational
 * (state.rolledBack): what happens to an environment after a failure is decided by `mlcd unwind`.
 */
boolean rolledBackByMlcd(String name) {
    return outcome('deploy', name) == 'ROLLED_BACK' ||
        outcome('test', name) in ['ROLLED_BACK', 'ROLLBACK_FAILED'] ||
        outcome('smoke', name) in ['ROLLED_BACK', 'ROLLBACK_FAILED']
}

/**
 * Newest first, ask `mlcd unwind` about every environment this build changed: mlcd rolls it back, keeps it
 * (on_failure in mlcd.yaml, rollback_on_failure: false, or rollbackOnFailure: false here) or leaves it as
 * mlcd already did (docs/decisions.md). Each runs inside the environment's lock, on an agent.
 */
void rollBackChanged(Map opts, Map state, String reason) {
    for (int i = state.changed.size() - 1; i >= 0; i--) {
        String name = state.changed[i] as String
        Map target = MlcdConfig.environment(state.cfg, name)
        lock(resource: MlcdConfig.lockName(state.cfg, name)) {
            onAgent(opts, false) {
                stage("Rollback ${name}") {
                    catchError(buildResult: 'FAILURE', stageResult: 'FAILURE') {
                        MlcdCli.unwind(this, [step: STEP, config: opts.config, env: name, reason: reason,
                                              keep: opts.rollbackOnFailure == false,
                                              credentials: unwindBindings(opts, state.cfg, target)])
                    }
                }
            }
        }
    }
}

/**
 * Run body on an agent with this build's .mlcd state, mlcd.yaml and the mlcd CLI (plus the bundle
 * archive when `withBundle`); save the state afterwards. Call it inside lock(): an executor is taken
 * only once the lock is held.
 */
void onAgent(Map opts, boolean withBundle, Closure body) {
    node(opts.agentLabel as String) {
        dir(MlcdCli.OUT_DIR) {
            deleteDir()
        }
        unstash(STATE)
        if (withBundle) {
            unstash(BUNDLE)
        }
        mlcdSetup(opts.setup)
        try {
            body()
        } finally {
            stashState(opts)
        }
    }
}

/**
 * Stash the .mlcd state, mlcd.yaml and the repository files later stages need (opts.carried, set by
 * loadConfig), never the bundle archive (stashed once, as BUNDLE).
 */
void stashState(Map opts) {
    List<String> files = [STATE_FILES, opts.config as String] + ((opts.carried ?: []) as List<String>)
    stash(name: STATE, includes: files.join(', '), excludes: BUNDLE_FILES, allowEmpty: true)
}

/** The outcome in a stage file of this workspace, or null if mlcd wrote none. */
String outcome(String stage, String envName) {
    String file = MlcdCli.stageFile(stage, envName)
    if (!fileExists(file)) {
        return null
    }
    // returnPojo: a JSON null is Java null, not a (truthy) net.sf.json.JSONNull
    return readJSON(file: file, returnPojo: true).outcome
}

/** The API key of environment `target` and the signing key(s) of mlcd.yaml, for `mlcd unwind`. */
List unwindBindings(Map opts, Map cfg, Map target) {
    return MlcdCli.keyBinding(this, credentialsFor(opts, cfg, target.name as String), target.apiKeyEnv as String) +
        MlcdCli.signingBindings(this, cfg, [signing: credentialsFor(opts, cfg, 'signing'),
                                            previous: credentialsFor(opts, cfg, 'signing-previous')])
}

/**
 * The credentials ids of mlcd.yaml's signing keys, as step arguments (only when mlcd.yaml has `signing:`):
 * the signing key (and previous one) for every step, the approval key for mlcdApprove and mlcdDeploy.
 */
Map signingArgs(Map opts, Map cfg) {
    Map names = (Map) (cfg.signing ?: [:])
    if (!names.keyEnv && !names.approvalKeyEnv) {
        return [:]
    }
    return [signingCredentialsId: credentialsFor(opts, cfg, 'signing'),
            previousSigningCredentialsId: credentialsFor(opts, cfg, 'signing-previous')]
}

/** signingArgs plus the approval key's credentials id (mlcdApprove, mlcdDeploy). */
Map approvalArgs(Map opts, Map cfg) {
    Map args = signingArgs(opts, cfg)
    return args ? args + [approvalCredentialsId: credentialsFor(opts, cfg, 'approval')] : args
}

/**
 * Credentials id for 'design', 'artifacts', an environment, 'signing', 'signing-previous' or 'approval': from
 * `credentials`, else mlcd-<project>-<target>.
 */
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
