package harness

/** What `error` (and a failing `sh`) throws: ends the build like Jenkins' AbortException. */
class PipelineAbort extends RuntimeException {
    PipelineAbort(String message) {
        super(message)
    }
}
