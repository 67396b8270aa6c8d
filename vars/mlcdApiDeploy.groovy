import groovy.transform.Field
import org.mlcd.ApiServices
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.MlcdStep
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdApiDeploy'
@Field static final List<String> KEYS = ['service', 'env', 'config', 'version', 'credentialsId',
                                          'serviceCredentialsId']
@Field static final String COMMAND = 'mlcd api deploy --config "$MLCD_CONFIG_PATH" --service "$MLCD_API_SERVICE" ' +
    '--env "$MLCD_ENV"'
@Field static final String COMMAND_VERSION = 'mlcd api deploy --config "$MLCD_CONFIG_PATH" ' +
    '--service "$MLCD_API_SERVICE" --env "$MLCD_ENV" --version "$MLCD_API_VERSION"'

/**
 * Deploy a version of a real-time API service through the API Deployer and gate it (`mlcd api deploy`):
 * publishes the JUnit gate report and the records; a version reverted after a failed gate, or a
 * failed revert, is noted in the build description; any failure fails the build.
 */
void call(Map args = [:]) {
    MlcdStep.checkArgs(this, STEP, args, KEYS, null)
    String missing = StepArgs.missingKey(STEP, args, [
        service: "the API service id from api_services, e.g. service: 'churn'",
        env: "the service's environment from api_services, e.g. env: 'prod'",
    ])
    if (missing) {
        error(missing)
    }
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, node: 'design'])
    String service = args.service
    Map keys = ApiServices.keyEnvs(readYaml(file: step.config), service)
    if (keys.problem) {
        error("${STEP}: ${keys.problem}")
    }
    List bindings = MlcdCli.keyBinding(this, step.credentialsId as String, keys.deployerKeyEnv as String)
    if (keys.serviceKeyEnv) {
        String id = args.serviceCredentialsId ?: MlcdConfig.defaultCredentialsId(step.cfg as Map, "api-${service}")
        bindings += MlcdCli.keyBinding(this, id, keys.serviceKeyEnv as String)
    }
    List<String> vars = ["MLCD_API_SERVICE=${service}".toString()]
    if (args.version) {
        vars << "MLCD_API_VERSION=${args.version}".toString()
    }
    Map run = MlcdCli.run(this, [stage: "api-deploy-${service}".toString(), env: args.env, config: step.config,
                                 command: args.version ? COMMAND_VERSION : COMMAND, vars: vars,
                                 credentials: bindings])
    MlcdCli.publish(this, run)
    String where = "${service} on ${args.env}"
    String version = ((Map) run.result)?.bundleId ?: 'the new version'
    if (run.exitCode == 0) {
        MlcdCli.describe(this, "${where}: ${version} deployed, gates passed")
        return
    }
    String outcome = ((Map) run.result)?.outcome
    if (outcome == 'ROLLED_BACK') {
        String to = MlcdCli.detail(run, 'revertedTo', 'the previous version')
        MlcdCli.describe(this, "${where}: ${version} failed; reverted to ${to} (verified)")
    } else if (run.exitCode == 5) {
        MlcdCli.describe(this, "${where}: REVERT FAILED, a person must act")
    }
    error(MlcdCli.failureMessage(STEP, args.env as String, run))
}
