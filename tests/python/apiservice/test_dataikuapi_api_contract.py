"""dataikuapi 15.2 (the official client) against the API Deployer and API node stand-ins.

The same calls Dataiku's own samples make: package and publish a version, create the
deployment, update it and wait on the future, read health and service URLs, switch
the single version, and query the API node with ``APINodeClient.predict_record(s)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.apienv import DEPLOYMENT, ENDPOINT, INFRA, PROJECT, SERVICE, labelled_requests, start_api_env

dataikuapi = pytest.importorskip("dataikuapi")


def test_dataikuapi_drives_the_api_deployer_and_queries_the_api_node(tmp_path: Path) -> None:
    with start_api_env(tmp_path) as api:
        client = dataikuapi.DSSClient(api.deployer.url, api.deployer.api_key)
        service = client.get_project(PROJECT).get_api_service(SERVICE)
        assert [e["id"] for e in service.get_settings().endpoints] == [ENDPOINT]
        for version in ("v1", "v2"):
            service.create_package(version)
            service.publish_package(version)
        assert [p["id"] for p in service.list_packages()] == ["v1", "v2"]

        deployer = client.get_apideployer()
        deployment = deployer.create_deployment(DEPLOYMENT, SERVICE, INFRA, "v1")
        deployment.start_update().wait_for_result()
        status = deployment.get_status()
        assert status.get_health() == "HEALTHY"
        assert status.get_service_urls() == [f"{api.apinode.url}/public/api/v1/{SERVICE}"]
        published = deployer.get_service(SERVICE).get_status()
        assert [d.id for d in published.get_deployments(INFRA)] == [DEPLOYMENT]
        assert [v["id"] for v in published.get_versions()] == ["v1", "v2"]

        settings = deployment.get_settings()
        settings.set_single_version("v2")
        settings.save()
        deployment.start_update().wait_for_result()
        assert deployment.get_settings().get_raw()["generationsMapping"]["generation"] == "v2"
        assert api.deployed_version() == "v2"

        node = dataikuapi.APINodeClient(api.apinode.url, SERVICE, api_key=api.apinode.api_key)
        records = labelled_requests(3)
        one = node.predict_record(ENDPOINT, records[0]["features"])
        assert one["result"]["prediction"] == records[0]["expected"]
        many = node.predict_records(ENDPOINT, [{"features": r["features"]} for r in records])
        assert [r["prediction"] for r in many["results"]] == [r["expected"] for r in records]
