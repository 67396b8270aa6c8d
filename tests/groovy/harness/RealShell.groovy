package harness

import java.util.concurrent.TimeUnit

/**
 * `sh` run for real the way durable-task's BourneShellScript.java does it: the script is written to a
 * file in the workspace's `@tmp` directory and, having no shebang, started as `sh -xe script.sh` in the
 * workspace, so every command is traced, with its variables expanded, to the console (stderr).
 * With returnStdout the script's stdout is kept apart; otherwise stdout and stderr share the console.
 */
class RealShell {
    static Map run(File dir, String script, Map<String, String> vars, boolean returnStdout, long timeoutSeconds = 300) {
        File tmp = new File(dir.path + '@tmp')
        tmp.mkdirs()
        File file = File.createTempFile('durable-', '.sh', tmp)
        file.setText(script, 'UTF-8')
        try {
            List<String> cmd = script.startsWith('#!') ? [file.path] : ['sh', '-xe', file.path]
            file.setExecutable(true)
            ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir)
            pb.environment().clear()
            pb.environment().putAll(vars.findAll { k, v -> v != null })
            if (!returnStdout) {
                pb.redirectErrorStream(true)
            }
            Process p = pb.start()
            StringBuilder err = new StringBuilder()
            Thread errReader = returnStdout ? Thread.start { err.append(p.errorStream.getText('UTF-8')) } : null
            String out = p.inputStream.getText('UTF-8')
            errReader?.join()
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroy()
                return [stdout: out, stderr: err.toString(), exitValue: 124]
            }
            return [stdout: out, stderr: err.toString(), exitValue: p.exitValue()]
        } finally {
            file.delete()
        }
    }
}
