package harness

/** What script-security's RejectedAccessException says: "Scripts not permitted to use <signature>". */
class SandboxRejection extends RuntimeException {
    SandboxRejection(String signature) {
        super("Scripts not permitted to use ${signature}")
    }
}
