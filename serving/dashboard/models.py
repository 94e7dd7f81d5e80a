"""The models page: published versions with their offline metrics side by side, the current one
marked, each one's evaluation report; promote and roll back, after a confirmation step that
asks for the API token.

The page uses :mod:`recommender.artifacts`, as ``recommender models list|promote|rollback``
does, and then swaps this worker's model the way ``POST /v1/admin/reload`` does
(:func:`serving.admin.reload_served_model`); the other workers follow within
MODEL_CHECK_SECONDS, as after any promotion.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import current_app, redirect, render_template, request, send_file, url_for

from recommender.artifacts import CURRENT, current_version, list_models, promote, rollback, rollback_target, verify_checksums
from recommender.errors import ArtifactError

from ..admin import reload_served_model
from ..state import serving_state
from . import access, charts
from .blueprint import dashboard, error_page
from .formatting import figure, metric_label, metric_names

REPORT, CHOICE = "report.html", "choice.html"  # the evaluation report; the automatic choice's page
DOCUMENTS = {"report": REPORT, "choice": CHOICE}
# The report is a page this code wrote, but it holds names from the training data: it may show
# its inline styles and embedded images, and nothing may run or load in it.
REPORT_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
CHARTED = ("recall", "ndcg")


def models_folder() -> tuple[Path, bool]:
    """The folder of published models, and whether promoting there changes what this server
    serves (it does when MODEL_PATH is that folder's ``current`` link)."""
    # Absolute, as the model loader reads it (from the working folder): Flask's send_file would
    # read a relative path from the package's folder. abspath keeps the ``current`` link unresolved.
    path = Path(os.path.abspath(current_app.config["MODEL_PATH"]))
    return path.parent, path.name == CURRENT


def report_available(manifest: dict, document: str = REPORT) -> bool:
    return document in (manifest.get("documents") or {})


@dashboard.get("/models")
def models():
    folder, promotable = models_folder()
    manifests = list(reversed(list_models(folder)))  # newest first
    served = serving_state().models.current()  # after its promotion check, as a request to the API would
    names = metric_names(manifests)
    return render_template(
        "dashboard/models.html",
        section="models",
        folder=folder,
        promotable=promotable,
        manifests=manifests,
        current=current_version(folder),
        served=served.version if served is not None else None,
        rollback_to=rollback_target(folder),
        metric_table=[(metric_label(name), [figure(name, (m.get("metrics") or {}).get(name)) for m in manifests]) for name in names],
        chart=_metrics_chart(manifests, names),
        reports={m["version"]: report_available(m) for m in manifests},
        choices={m["version"]: report_available(m, CHOICE) for m in manifests},
        done=_done(request.args.get("done", ""), manifests),
        check_seconds=current_app.config["MODEL_CHECK_SECONDS"],
    )


def _done(done: str, manifests: list[dict]) -> tuple[str, str] | None:
    """(action, version) of the change just made, shown as a notice; only for a listed version,
    so a crafted link cannot put other words on the page."""
    action, _, version = done.partition(":")
    if action in ("promote", "rollback") and any(m["version"] == version for m in manifests):
        return action, version
    return None


def _metrics_chart(manifests: list[dict], names: list[str]):
    """Recall and NDCG at the largest k every evaluated version has, one group per version."""
    evaluated = [m for m in manifests if isinstance(m.get("metrics"), dict)]
    shown = [name for name in names if name.partition("@")[0] in CHARTED and all(name in m["metrics"] for m in evaluated)]
    largest_k = max((int(name.partition("@")[2]) for name in shown), default=None)
    shown = [name for name in shown if name.endswith(f"@{largest_k}")]
    if not evaluated or not shown:
        return None
    groups = [(m["version"], [charts.Bar(name, float(m["metrics"][name])) for name in shown]) for m in evaluated]
    return charts.grouped_bars(groups, title="Offline accuracy per model version", value_text=lambda v: f"{v:.4f}")


@dashboard.get("/models/<version>/<any(report, choice):document>")
def model_report(version: str, document: str):
    """The model folder's own evaluation report, or its automatic choice's page, checked
    against its manifest, under a policy that lets nothing run."""
    folder, _ = models_folder()
    name = DOCUMENTS[document]
    manifest = next((m for m in list_models(folder) if m["version"] == version), None)  # only listed folders, by name
    if manifest is None or not report_available(manifest, name):
        what = "evaluation report" if name == REPORT else "automatic choice's page (it was trained with --algorithm given)"
        return error_page(404, "No report", f"There is no {what} for model {version!r} in {folder}.")
    try:
        verify_checksums(folder / version, {"files": {}, "documents": {name: manifest["documents"][name]}})
    except ArtifactError as error:
        return error_page(409, "Report damaged", str(error))
    response = send_file(folder / version / name, mimetype="text/html", max_age=0)
    response.headers["Content-Security-Policy"] = REPORT_POLICY
    return response


@dashboard.route("/models/promote", methods=["GET", "POST"])
def promote_model():
    """GET: the confirmation page; POST (with the API token): promote the chosen version."""
    folder, promotable = models_folder()
    # The confirmation posts to its own address: the form's version is what was confirmed,
    # and one that differs from the address's is refused rather than one of them picked.
    version = request.form.get("version", "") if request.method == "POST" else request.args.get("version", "")
    if request.method == "POST" and request.args.get("version", version) != version:
        return error_page(400, "Two versions", "The form and the address name different versions: open the models page and promote again.")
    known = {m["version"]: m for m in list_models(folder)}
    if version not in known:
        return error_page(404, "Unknown model", f"There is no model {version!r} in {folder}.")
    return _confirmed_change("promote", folder, promotable, known[version], lambda: promote(folder, version))


@dashboard.route("/models/rollback", methods=["GET", "POST"])
def rollback_model():
    """GET: the confirmation page; POST (with the API token): promote the previously promoted version."""
    folder, promotable = models_folder()
    target = rollback_target(folder)
    known = {m["version"]: m for m in list_models(folder)}
    if target not in known:
        return error_page(409, "Nothing to roll back to", f"No model was promoted in {folder} before the current one.")
    return _confirmed_change("rollback", folder, promotable, known[target], lambda: rollback(folder))


def _confirmed_change(action: str, folder: Path, promotable: bool, target: dict, change):
    current = current_version(folder)
    if not promotable:
        message = f"This server serves {current_app.config['MODEL_PATH']}, not {folder / CURRENT}: promoting would not change what it serves."
        return error_page(409, "Not here", message)
    manifests = [m for m in list_models(folder) if m["version"] in (current, target["version"])]
    names = metric_names(manifests)
    current_manifest = next((m for m in manifests if m["version"] == current), {})

    # Variants that serve whatever is current: their figures will pool the two models from now.
    following = [(experiment.name, variant.name) for experiment in serving_state().experiments.experiments.experiments if experiment.enabled
                 for variant in experiment.variants if variant.model in ("current", "popular")]

    def confirmation(status: int = 200, problem: str | None = None):
        rows = [(metric_label(name), figure(name, (current_manifest.get("metrics") or {}).get(name)), figure(name, (target.get("metrics") or {}).get(name))) for name in names]
        page = render_template(
            "dashboard/confirm.html", section="models", action=action, target=target, current=current, rows=rows, following=following,
            token_needed=bool(current_app.config["API_TOKEN"]), problem=problem, check_seconds=current_app.config["MODEL_CHECK_SECONDS"],
        )
        return page, status

    if request.method == "GET":
        return confirmation()
    if not access.may_change_models(request.form.get("token", "")):
        return confirmation(401, "That is not the API token. Changing the served model needs the API token (RECOMMENDER_API_TOKEN).")
    if request.form.get("expected_current", "") != (current or ""):
        return confirmation(409, f"The current model changed while this page was open (it is now {current}). Check again before you confirm.")
    try:
        change()
    except ArtifactError as error:
        return error_page(409, "Not done", str(error))
    model, _ = reload_served_model(serving_state())
    return redirect(url_for("dashboard.models", done=f"{action}:{model.version}"), 303)
