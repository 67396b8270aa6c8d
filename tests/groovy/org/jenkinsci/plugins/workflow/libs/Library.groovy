package org.jenkinsci.plugins.workflow.libs

import java.lang.annotation.Retention
import java.lang.annotation.RetentionPolicy

/** Test stand-in for Jenkins' @Library, so that a Jenkinsfile's `@Library('mlcd@x') _` loads in the harness. */
@Retention(RetentionPolicy.SOURCE)
@interface Library {
    String[] value()
}
