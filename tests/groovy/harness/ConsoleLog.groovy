package harness

/**
 * The build's console log. Inside `withCredentials` every line is masked the way credentials-binding's
 * SecretPatterns/MaskingConsoleLogFilter do it (BindingStep.java): each bound secret value, exactly as
 * stored, becomes `****`. Jenkins also masks shell-quoted forms (masking/BashSecretPatternFactory.java,
 * since 1.19) and base64 forms (masking/Base64SecretPatternFactory.java, since 636.v55f1275c7b_27); the
 * harness does not, so the tests' secret search (plain, URL-encoded, base64, partial) is stricter than
 * Jenkins: whatever it finds, a build log could show on some Jenkins.
 */
class ConsoleLog extends ArrayList {
    /** Secret values currently bound (a stack of withCredentials blocks). */
    final List<List<String>> masks = []

    @Override
    boolean add(Object line) {
        String text = String.valueOf(line)
        for (List<String> block : masks) {
            for (String secret : block) {
                if (secret) {
                    text = text.replace(secret, '****')
                }
            }
        }
        return super.add(text)
    }

    /** The whole log as one text (what a person scrolling the console sees). */
    String text() {
        return join('\n')
    }
}
