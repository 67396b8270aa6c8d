// CodeNarc's Jenkins (CPS) rules (rulesets/jenkins.xml in CodeNarc 3.7.0), configured for mlcd's library.
//  * applyToFileNames: CodeNarc ships every Jenkins rule with applyToFileNames = 'Jenkinsfile', so on a
//    shared library (vars/*.groovy, src/**/*.groovy) they silently check nothing. mlcd applies them to
//    every Groovy file and to Jenkinsfiles.
//  * cpsPackages: CpsCallFromNonCpsMethod only treats methods of classes in these packages (plus the default
//    package, i.e. vars/ scripts and Jenkinsfiles) as CPS-transformed; all of mlcd's src/ classes are.
ruleset {
    String allPipelineCode = '*.groovy,Jenkinsfile*'

    rule(org.codenarc.rule.jenkins.CpsCallFromNonCpsMethodRule) {
        applyToFileNames = allPipelineCode
        cpsPackages = ['org.mlcd']
    }
    rule(org.codenarc.rule.jenkins.ForbiddenCallInCpsMethodRule) {
        applyToFileNames = allPipelineCode
    }
    rule(org.codenarc.rule.jenkins.ClosureInGStringRule) {
        applyToFileNames = allPipelineCode
    }
    rule(org.codenarc.rule.jenkins.ClassNotSerializableRule) {
        applyToFileNames = allPipelineCode
    }
    rule(org.codenarc.rule.jenkins.ExpressionInCpsMethodNotSerializableRule) {
        applyToFileNames = allPipelineCode
    }
    rule(org.codenarc.rule.jenkins.ParameterOrReturnTypeNotSerializableRule) {
        applyToFileNames = allPipelineCode
    }
    rule(org.codenarc.rule.jenkins.ObjectOverrideOnlyNonCpsMethods) {
        applyToFileNames = allPipelineCode
    }
    // mlcd's rule (tools/codenarc/src/org/mlcd/tooling/): an implicit step call such as `sh 'x'` inside a
    // @NonCPS method of a vars/ script, which CpsCallFromNonCpsMethod cannot see (the call is dynamic).
    rule(org.mlcd.tooling.StepCallFromNonCpsMethodRule) {
        applyToFileNames = allPipelineCode
    }
}
