package harness

/**
 * The build's console log. Inside `withCredentials` every line is masked the way credentials-binding's
 * SecretPatterns/MaskingConsoleLogFilter do it (BindingStep.java): each bound secret value, exactly as
 * stored, becomes `****`. Forms the masking does not know (URL-encoded, base64, a part of the value) pass
 * through: that is what the tests' secret search looks for.
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
