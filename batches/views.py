"""The batches page: a user's batch jobs in the current workspace, their progress and cost,
their result files to download, a way to cancel one, and a form to start one from a file."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from api.errors import ApiError
from api.selectors import api_keys_acting_as
from billing.selectors import usage_total_for_references
from workspaces.selectors import current_membership_get

from . import selectors, services
from .forms import BatchStartForm
from .models import Batch


@login_required
def batch_list(request):
    workspace = current_membership_get(request).workspace
    keys = api_keys_acting_as(user=request.user, workspace=workspace)
    form = BatchStartForm(request.POST or None, request.FILES or None, keys=keys)
    if request.method == "POST" and form.is_valid():
        batch = _batch_start(form)
        if batch is not None:
            messages.success(
                request,
                _("Batch %(batch)s started: its requests are checked, then run.")
                % {"batch": batch.public_id},
            )
            return redirect("batches")
    batches = selectors.batches_for_user(user=request.user, workspace=workspace)
    totals = usage_total_for_references([batch.public_id for batch in batches])
    for batch in batches:
        batch.cost = totals.get(batch.public_id, {}).get("cost")
        batch.is_open = batch.status in Batch.OPEN
        batch.cancellable = batch.status in (Batch.Status.VALIDATING, Batch.Status.IN_PROGRESS)
    return render(
        request,
        "batches/list.html",
        {
            "batches": batches,
            "workspace": workspace,
            "polling": any(batch.is_open for batch in batches),
            "form": form,
            "has_keys": keys.exists(),
        },
    )


def _batch_start(form: BatchStartForm) -> Batch | None:
    """The batch the form asks for, or None with the refusal on the form (as the API words
    it: a file that is not JSON Lines names its first line at fault)."""
    data = form.cleaned_data
    upload = data["file"]
    description = data["description"].strip()
    try:
        return services.batch_start(
            key=data["key"],
            filename=upload.name,
            data=upload.read(),
            endpoint=data["endpoint"],
            metadata={"description": description} if description else None,
        )
    except ApiError as refused:
        form.add_error("file" if refused.param == "file" else None, refused.message)
        return None


@login_required
def batch_file_download(request, file_id: str):
    workspace = current_membership_get(request).workspace
    file = selectors.batch_file_get_for_user(
        user=request.user, workspace=workspace, public_id=file_id
    )
    if file is None:
        raise Http404
    response = HttpResponse(bytes(file.data), content_type="application/jsonl")
    response["Content-Disposition"] = content_disposition_header(True, file.filename)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def batch_cancel_view(request, batch_id: str):
    workspace = current_membership_get(request).workspace
    batch = selectors.batch_get_for_user(user=request.user, workspace=workspace, public_id=batch_id)
    if batch is None:
        raise Http404
    try:
        services.batch_cancel(batch=batch)
    except ApiError:
        messages.error(request, _("This batch has already finished."))
    else:
        messages.success(
            request, _("Batch cancelled: its requests in flight stop, the answers so far are kept.")
        )
    return redirect("batches")
