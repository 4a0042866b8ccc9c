"""lab/objectstore.py: the object store's manifests, the distribution storage section, SigV4."""
import base64
import datetime
import ipaddress

from lab import labctl, objectstore

IMAGE = "localhost:5104/lab/s3:v1.2.0-0123456789ab"
AWS_EXAMPLE = {  # the example credentials of AWS's Signature Version 4 documentation for S3
    "access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "region": "us-east-1", "now": datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc),
}


def _by_kind(docs):
    return {doc["kind"]: doc for doc in docs}


def test_manifests_are_namespace_secret_deployment_service_in_the_lab_namespace():
    docs = objectstore.manifests(IMAGE, "/state/objectstore")
    assert [d["kind"] for d in docs] == ["Namespace", "Secret", "Deployment", "Service"]
    assert docs[0]["metadata"]["name"] == objectstore.NAMESPACE == "lab-objectstore"
    assert all(d["metadata"]["namespace"] == objectstore.NAMESPACE for d in docs[1:])


def test_service_has_the_fixed_cluster_ip_in_the_static_band_of_the_service_range():
    service = _by_kind(objectstore.manifests(IMAGE, "/state/objectstore"))["Service"]
    ip = ipaddress.ip_address(service["spec"]["clusterIP"])
    network = ipaddress.ip_network(labctl.SERVICE_CIDR)
    assert ip in network and int(ip) - int(network.network_address) < 256  # the static band
    assert str(ip) != "10.96.0.1"  # the kubernetes Service
    assert objectstore.ENDPOINT == f"http://{ip}:{service['spec']['ports'][0]['port']}"
    deployment = _by_kind(objectstore.manifests(IMAGE, "/state/objectstore"))["Deployment"]
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]


def test_deployment_runs_the_image_on_the_state_folder_with_the_buckets_and_the_key_pair():
    docs = _by_kind(objectstore.manifests(IMAGE, "/state/objectstore"))
    spec = docs["Deployment"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}  # one writer of the bolt file
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    args = container["args"]
    assert args[args.index("-bucket") + 1].split(",") == list(objectstore.BUCKETS)
    assert args[args.index("-db") + 1].startswith("/data/")
    assert pod["volumes"] == [{"name": "data", "hostPath": {"path": "/state/objectstore", "type": "DirectoryOrCreate"}}]
    assert container["readinessProbe"]["httpGet"]["path"] == objectstore.HEALTH_PATH
    secret = docs["Secret"]
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"accesskey": objectstore.ACCESS_KEY, "secretkey": objectstore.SECRET_KEY}
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env == {"S3SERVER_ACCESS_KEY": {"name": secret["metadata"]["name"], "key": "accesskey"},
                   "S3SERVER_SECRET_KEY": {"name": secret["metadata"]["name"], "key": "secretkey"}}


def test_buckets_are_one_per_environment_of_the_lab_inventory_and_valid_names():
    assert objectstore.BUCKETS == ("test-registry", "uat-registry", "prod-registry")
    assert objectstore.bucket("uat") == "uat-registry"
    for name in objectstore.BUCKETS:
        assert 3 <= len(name) <= 63 and name == name.lower() and name.replace("-", "").isalnum()


def test_distribution_storage_is_path_style_without_redirects_and_without_the_key_pair():
    storage = objectstore.distribution_storage("test-registry", "/env/test", chunksize=5 << 20)
    assert storage == {
        "s3": {"bucket": "test-registry", "region": "us-east-1", "regionendpoint": "http://10.96.0.20:9000",
               "forcepathstyle": True, "secure": False, "v4auth": True, "rootdirectory": "/env/test",
               "chunksize": 5 << 20},
        "redirect": {"disable": True}, "delete": {"enabled": True}}
    assert "rootdirectory" not in objectstore.distribution_storage("b")["s3"]


def test_sign_matches_the_aws_documentation_examples():
    get = objectstore.sign("GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                           headers={"Range": "bytes=0-9"}, **AWS_EXAMPLE)
    assert get["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    assert get["x-amz-content-sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    listing = objectstore.sign("GET", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", **AWS_EXAMPLE)
    assert listing["Authorization"].endswith("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    lifecycle = objectstore.sign("GET", "https://examplebucket.s3.amazonaws.com/?lifecycle", **AWS_EXAMPLE)
    assert lifecycle["Authorization"].endswith("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")


def test_object_url_encodes_the_key_once_and_keeps_its_slashes():
    url = objectstore.object_url("b", "docker/registry/v2/a b+c", {"list-type": 2, "prefix": "x/y"})
    assert url == "http://10.96.0.20:9000/b/docker/registry/v2/a%20b%2Bc?list-type=2&prefix=x%2Fy"
