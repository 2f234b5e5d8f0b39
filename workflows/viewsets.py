"""The task frontend: Viewflow's Material site with the case flow's app, every list scoped (upstream #505).

The kanban dashboard is replaced by the inbox (it ran a query per card and was not scoped); the stock inbox, queue,
archive, task and process lists keep their pages but take workflows.selectors' querysets and our columns; the
process page is the case page. config.urls mounts `site` at /work/.
May import: roster, screening, cases.
"""

from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from viewflow.urls import Site
from viewflow.utils import viewprop
from viewflow.views import Action
from viewflow.workflow.flow import FlowAppViewset

from cases.care_access import CONCERN_ROLES
from cases.services import emergency_access_may_request
from roster import scoping
from roster.roles import Role
from workflows import selectors, views, views_emergency, views_support, views_transfer
from workflows.flows import CaseFlow


class _ToInbox(RedirectView):
    def get_redirect_url(self, *args, **kwargs):
        return CaseFlow.instance.reverse("inbox")


class CaseFlowAppViewset(FlowAppViewset):
    inbox_view_class = views.CaseInboxView
    queue_view_class = views.CaseQueueView
    archive_view_class = views.CaseArchiveView
    task_list_view_class = views.CaseTaskListView
    process_list_view_class = views.CaseListView
    chart_view_class = views.CaseChartView

    @property
    def index_path(self):
        return path("", _ToInbox.as_view(), name="index")

    @viewprop
    def process_detail_view(self):
        return views.case_detail

    def get_context_data(self, request):
        # The menu's inbox and queue counts: the stock ones match a role permission at any school (#505).
        return {
            "user_inbox": views.CappedCount(selectors.inbox(request.user)),
            "user_queue": views.CappedCount(selectors.queue(request.user), views.queue_count_key(request.user)),
        }

    def get_list_page_actions(self, request, *actions):
        if scoping.scope_for(request.user).roles & CONCERN_ROLES:  # 关注上报 (issue 20): who may raise a concern
            actions = (*actions, Action(_("Raise a concern"), url=reverse("care:concern_new")))
        if Role.PRINCIPAL in scoping.scope_for(request.user).roles:  # the scope is read once per request
            actions = (*actions, Action(_("Hand over a colleague's cases"), url=self.reverse("hand_over")))
        if emergency_access_may_request(request.user):  # break the glass: psychology teachers, principals, centres
            actions = (*actions, Action(_("Emergency access"), url=self.reverse("emergency_access")))
        return actions

    @property
    def referral_by_staff_path(self):
        return path("refer/", views.referral_by_staff, name="referral_by_staff")

    @property
    def hand_over_path(self):
        return path("hand-over/", views.hand_over, name="hand_over")

    @property
    def emergency_access_path(self):
        return path("emergency-access/", views_emergency.emergency_access, name="emergency_access")

    @property
    def case_reopen_path(self):
        return path("<int:process_pk>/reopen/", views.case_reopen, name="case_reopen")

    @property
    def case_review_path(self):
        return path("<int:process_pk>/review/", views.case_review, name="case_review")

    @property
    def parent_contact_extra_path(self):
        return path("<int:process_pk>/parent-contacts/new/", views.parent_contact_extra, name="parent_contact_extra")

    @property
    def support_request_path(self):
        return path("<int:process_pk>/support/new/", views_support.support_request, name="support_request")

    @property
    def transfer_release_request_path(self):
        return path("<int:process_pk>/transfer/release-request/", views_transfer.release_request,
                    name="transfer_release_request")  # fmt: skip

    @property
    def transfer_release_path(self):
        return path("<int:process_pk>/transfer/release/", views_transfer.release, name="transfer_release")

    @property
    def coordination_add_path(self):
        return path("<int:process_pk>/coordination/new/", views_support.coordination_add, name="coordination_add")

    @property
    def referral_feedback_path(self):
        return path(
            "<int:process_pk>/referrals/<int:referral_pk>/feedback/", views.referral_feedback, name="referral_feedback"
        )

    @property
    def tasks_assign_path(self):
        # Bulk claiming bypasses workflows.services (and its clear messages); one task at a time.
        return None

    @property
    def tasks_unassign_path(self):
        return None

    @property
    def process_cancel_path(self):
        # Cancelling a whole case is a closure (approved a level higher), never a button on the case page.
        return None


site = Site(
    title=_("Cases"),
    viewsets=[CaseFlowAppViewset(CaseFlow, icon="psychology")],
)
