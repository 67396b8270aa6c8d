"""Real-time prediction services: deployed through DSS's API Deployer, gated on correctness and load."""
