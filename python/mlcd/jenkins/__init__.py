"""mlcd for the platform team and CI admins: Jenkins jobs onboarded, linted and read (python-jenkins)."""
