"""The app under benchmark: the real factory plus a bare route to compare against."""
from app import create_app

app = create_app()


@app.route("/bench/ok")
def bench_ok():
    return "ok"
