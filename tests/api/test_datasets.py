
import pytest

from tests.factories import dataset_npz, spec


def npz_bytes(n_train=60, n_test=20, features=4, classes=3, seed=0):
    return dataset_npz(n_train, n_test, features=features, classes=classes, seed=seed,
                       compress=True)


def upload(client, data, filename="data.npz", **form):
    return client.post("/v1/datasets", files={"file": (filename, data)}, data=form)


def test_upload_npz_and_train_on_it(client, run_jobs):
    response = upload(client, npz_bytes(), name="toy")
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert response.headers["location"] == f"/v1/datasets/{dataset['id']}"
    assert (dataset["n_train"], dataset["n_test"], dataset["input_shape"],
            dataset["n_classes"], dataset["format"], dataset["name"]) == (
        60, 20, [4], 3, "npz", "toy")
    job_spec = spec(iterations=30)
    job_spec["model"] = {"input_shape": [4], "layers": [
        {"type": "dense", "units": 16, "activation": "relu"}, {"type": "dropout", "rate": 0.2},
        {"type": "dense", "units": 3, "activation": "softmax"}]}
    job_spec["data"] = {"dataset_id": dataset["id"]}
    job_id = client.post("/v1/jobs", json=job_spec).json()["id"]
    refused = client.delete(f"/v1/datasets/{dataset['id']}")
    assert refused.status_code == 409
    run_jobs()
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
    assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}").json()["spec"]["data"] == {
        "dataset_id": dataset["id"]}


def test_upload_csv_with_label_column(client):
    lines = ["a,b,label"] + [f"{i},{i * 2},{i % 2}" for i in range(40)]
    response = upload(client, "\n".join(lines).encode(), "d.csv", test_fraction="0.25")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["n_train"], body["n_test"], body["input_shape"], body["n_classes"]) == (
        30, 10, [2], 2)


def test_list_and_get(client):
    ids = [upload(client, npz_bytes(seed=i)).json()["id"] for i in range(3)]
    listed = client.get("/v1/datasets", params={"limit": 2}).json()
    assert [d["id"] for d in listed["data"]] == ids[::-1][:2]
    rest = client.get("/v1/datasets", params={"cursor": listed["next_cursor"]}).json()
    assert [d["id"] for d in rest["data"]] == ids[:1] and rest["next_cursor"] is None
    assert client.get(f"/v1/datasets/{ids[0]}").json()["id"] == ids[0]


def test_builtin_list_names_their_parameters(client):
    body = client.get("/v1/datasets/builtin").json()
    names = {d["name"]: d for d in body["data"]}
    assert set(names) == {"digits", "spirals", "blobs", "xor"}
    assert names["digits"]["n_samples"] == 1797
    assert {p["name"] for p in names["spirals"]["params"]} >= {"n_samples", "noise", "seed"}
    assert {p["name"] for p in body["split_parameters"]} == {"test_fraction", "split_seed"}


@pytest.mark.parametrize(("data", "path"), [
    (b"", "file"),
    (b"\xff\xfe\x00garbage", "file"),
    (b"a,b,label\n1,2,0\n1,2\n", "file.line 3"),
])
def test_bad_uploads_are_422_naming_the_problem(client, data, path):
    response = upload(client, data, "x.csv")
    assert response.status_code == 422
    assert path in [d["path"] for d in response.json()["error"]["details"]]


def test_missing_file_field_is_422(client):
    response = client.post("/v1/datasets", data={"name": "x"})
    assert response.status_code == 422
    assert "file" in [d["path"] for d in response.json()["error"]["details"]]


def test_upload_larger_than_the_limit_is_413(db, executor):
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings

    settings = Settings(database_url=str(db.url), workers=0, max_upload_bytes=4096)
    with TestClient(create_app(settings, db=db, executor=executor)) as limited:
        response = upload(limited, b"a,label\n" + b"1,0\n" * 5000, "big.csv")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_idempotent_upload(client):
    data = npz_bytes()
    first = client.post("/v1/datasets", files={"file": ("d.npz", data)},
                        headers={"Idempotency-Key": "k1"})
    second = client.post("/v1/datasets", files={"file": ("d.npz", data)},
                         headers={"Idempotency-Key": "k1"})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert len(client.get("/v1/datasets").json()["data"]) == 1
