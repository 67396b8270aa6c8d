import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.MlcdStep
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdDoctor'
@Field static final List<String> KEYS = ['env', 'config', 'credentials']
@Field static final String COMMAND = 'mlcd doctor --config "$MLCD_CONFIG_PATH"'
@Field static final String COMMAND_ENV = 'mlcd doctor --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'

/**
 * Check, read-only, what mlcd assumes about the DSS nodes of mlcd.yaml (`mlcd doctor`, docs/commands.md):
 * the design node and every environment's automation node, or only `env`'s. Binds the API key of each
 * node it checks (no signing key: doctor writes no audit trail), publishes reports/doctor.xml with junit
 * and archives the stage file (with every verdict) and reports. A failing check fails the build with
 * mlcd's one line (first failing check and its fix).
 */
void call(Map args = [:]) {
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, node: 'design'])
    Map cfg = step.cfg
    Map creds = (args.credentials ?: [:]) as Map
    String badTarget = StepArgs.unknownKey("${STEP} credentials", creds,
                                           ['design'] + MlcdConfig.environmentNames(cfg))
    if (badTarget) {
        error(badTarget)
    }
    List envs = (List) cfg.environments
    if (args.env) {
        Map target = MlcdCli.environment(this, cfg, args.env as String, STEP)
        step.env = target.name
        envs = [target]
    }
    List bindings = MlcdCli.keyBinding(this, (creds.design ?: MlcdConfig.defaultCredentialsId(cfg, 'design')) as String,
                                       cfg.designKeyEnv as String)
    for (Object o : envs) {
        Map e = (Map) o
        String id = creds[e.name] ?: MlcdConfig.defaultCredentialsId(cfg, e.name as String)
        bindings += MlcdCli.keyBinding(this, id, e.apiKeyEnv as String)
    }
    Map run = MlcdStep.execute(this, step, [stage: 'doctor', command: args.env ? COMMAND_ENV : COMMAND,
                                            credentials: bindings, signing: false])
    if (run.exitCode == 0) {
        echo "${STEP}: ${run.result?.message ?: 'every check passed'}"
        return
    }
    MlcdStep.fail(this, step, run)
}
