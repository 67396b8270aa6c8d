package org.jenkinsci.plugins.workflow.libs

import java.lang.annotation.Retention
import java.lang.annotation.RetentionPolicy

/** Compile-time stand-in for Jenkins' @Library (pipeline-groovy-lib), so a Jenkinsfile's `@Library('mlcd') _` compiles. */
@Retention(RetentionPolicy.SOURCE)
@interface Library {
    String[] value()
}
