"""The batches page: a user's batch jobs in the current workspace, their progress and cost,
their result files to download, and a way to cancel one."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from api.errors import ApiError
from billing.selectors import usage_total_for_references
from workspaces.selectors import current_membership_get

from . import selectors, services
from .models import Batch


@login_required
def batch_list(request):
    workspace = current_membership_get(request).workspace
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
        },
    )


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
