package harness

/** `currentBuild`: result only gets worse, as in Jenkins. */
class FakeRun implements Serializable {
    static final List<String> ORDER = ['SUCCESS', 'UNSTABLE', 'FAILURE', 'NOT_BUILT', 'ABORTED']
    String result = null
    String description = null
    String displayName = '#1'
    int number = 1
    String absoluteUrl = 'http://jenkins.example/job/team/1/'

    void setResult(String value) {
        if (result == null || ORDER.indexOf(value) > ORDER.indexOf(result)) {
            result = value
        }
    }

    /** Forget the result (tests running a second build in one test method). */
    void reset() {
        result = null
        description = null
    }

    String getCurrentResult() {
        return result ?: 'SUCCESS'
    }

    boolean resultIsBetterOrEqualTo(String other) {
        return ORDER.indexOf(getCurrentResult()) <= ORDER.indexOf(other)
    }

    boolean resultIsWorseOrEqualTo(String other) {
        return ORDER.indexOf(getCurrentResult()) >= ORDER.indexOf(other)
    }
}
