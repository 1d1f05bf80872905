"""The console's routes, all under /console/ (mounted by `hub.composition.app`)."""

from __future__ import annotations

from pathlib import Path

from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

import channels.http.route_ids  # noqa: F401 - registers {name:id}
from agent_console import (
    agents,
    archiving,
    audit,
    bounces,
    calls,
    email,
    email_inboxes,
    login,
    profile,
    teams,
    two_factor,
    two_factor_login,
    views,
    visitors,
    websites,
)
from agent_console.socket import console_socket
from agent_console.web import SecurityHeaders

STATIC_DIR = Path(__file__).parent / "static"

call_routes = [
    Route("/calls", calls.calls_page, methods=["GET"], name="calls"),
    Route("/calls", calls.log_call, methods=["POST"], name="log_call"),
    Route("/api/calls", calls.api_calls, methods=["GET"], name="api_calls"),
    Route("/calls/{call_id:id}/called-back", calls.called_back, methods=["POST"]),
    Route("/contacts/{contact_id:id}", calls.contact_page, methods=["GET"], name="contact"),
    Route("/contacts/{contact_id:id}", calls.update_contact, methods=["POST"]),
    Route("/contacts/{contact_id:id}/phones", calls.add_contact_phone, methods=["POST"]),
    Route("/phone-lines", calls.phone_lines_page, methods=["GET"], name="phone_lines"),
    Route("/phone-lines", calls.create_phone_line, methods=["POST"]),
    Route("/phone-lines/{inbox_id:id}", calls.update_phone_line, methods=["POST"]),
    Route("/phone-lines/{inbox_id:id}/rotate", calls.rotate_cti_token, methods=["POST"]),
    Route("/phone-lines/{inbox_id:id}/archive", archiving.archive_phone_line, methods=["POST"]),
]

# The team (admins, agent_console/agents.py), the invitation link, and each
# agent's own profile and availability (agent_console/profile.py).
agent_routes = [
    Route("/agents", agents.agents_page, methods=["GET"], name="agents"),
    Route("/agents", agents.create_agent, methods=["POST"], name="create_agent"),
    Route("/agents/invite", agents.invite_agent, methods=["POST"], name="invite_agent"),
    Route("/agents/{agent_id:id}", agents.agent_page, methods=["GET"], name="agent"),
    Route("/agents/{agent_id:id}", agents.update_agent, methods=["POST"]),
    Route("/agents/{agent_id:id}/deactivate", agents.deactivate_agent, methods=["POST"]),
    Route("/agents/{agent_id:id}/reactivate", agents.reactivate_agent, methods=["POST"]),
    Route("/agents/{agent_id:id}/delete", agents.delete_agent, methods=["POST"]),
    Route("/agents/{agent_id:id}/password", agents.reset_password, methods=["POST"]),
    Route("/agents/{agent_id:id}/invite", agents.reinvite_agent, methods=["POST"]),
    Route("/agents/{agent_id:id}/avatar", agents.avatar, methods=["GET"], name="avatar"),
    Route("/join", agents.join_page, methods=["GET"], name="join_page"),
    Route("/join", agents.join, methods=["POST"], name="join"),
    Route("/profile", profile.profile_page, methods=["GET"], name="profile"),
    Route("/profile", profile.set_name, methods=["POST"]),
    Route("/profile/avatar", profile.set_avatar, methods=["POST"]),
    Route("/profile/password", profile.change_password, methods=["POST"]),
    Route("/profile/notifications", profile.set_notifications, methods=["POST"]),
    Route("/availability", profile.set_availability, methods=["POST"], name="availability"),
]

email_routes = [
    Route(
        "/email-inboxes", email_inboxes.email_inboxes_page, methods=["GET"], name="email_inboxes"
    ),
    Route("/email-inboxes", email_inboxes.create_email_inbox, methods=["POST"]),
    Route("/bounces", bounces.bounces_page, methods=["GET"], name="bounces"),
    Route("/email-inboxes/new", email_inboxes.new_email_inbox_page, methods=["GET"]),
    Route("/email-inboxes/{inbox_id:id}", email_inboxes.email_inbox_page, methods=["GET"]),
    Route("/email-inboxes/{inbox_id:id}", email_inboxes.update_email_inbox, methods=["POST"]),
    Route(
        "/email-inboxes/{inbox_id:id}/rotate", email_inboxes.rotate_intake_token, methods=["POST"]
    ),
    Route("/email-inboxes/{inbox_id:id}/archive", archiving.archive_email_inbox, methods=["POST"]),
    Route(
        "/inboxes/{inbox_id:id}/continue-by-email",
        email_inboxes.continue_by_email,
        methods=["POST"],
    ),
    Route("/emails/{email_id:id}/html", email.email_html, methods=["GET"]),
    Route("/emails/{email_id:id}/raw", email.raw_email, methods=["GET"]),
    Route("/api/emails/{email_id:id}", email.api_email, methods=["GET"]),
    Route("/attachments/{attachment_id:id}", email.attachment, methods=["GET"]),
    Route(
        "/conversations/{conversation_id:id}/emails",
        email.api_conversation_emails,
        methods=["GET"],
    ),
    Route(
        "/conversations/{conversation_id:id}/messages/{seq:id}/retry",
        email.retry,
        methods=["POST"],
    ),
]

# Website inboxes (agent_console/websites.py)
website_routes = [
    Route("/inboxes", websites.websites_page, methods=["GET"], name="inboxes"),
    Route("/inboxes", websites.create_website, methods=["POST"]),
    Route("/inboxes/new", websites.new_website_page, methods=["GET"]),
    Route("/inboxes/{inbox_id:id}", websites.website_page, methods=["GET"]),
    Route("/inboxes/{inbox_id:id}", websites.update_website, methods=["POST"]),
    Route("/inboxes/{inbox_id:id}/check", websites.check_website, methods=["POST"]),
    Route("/inboxes/{inbox_id:id}/archive", websites.archive_website, methods=["POST"]),
    Route("/inboxes/{inbox_id:id}/identity", websites.require_identity, methods=["POST"]),
]

# Two-factor login: the login's second step, each agent's Security page, the admins' page.
two_factor_routes = [
    Route("/login/code", two_factor_login.code_page, methods=["GET"], name="login_code"),
    Route("/login/code", two_factor_login.check_code, methods=["POST"]),
    Route("/login/two-factor-setup", two_factor_login.setup_page, methods=["GET"]),
    Route("/login/two-factor-setup", two_factor_login.confirm_setup, methods=["POST"]),
    Route("/security", two_factor.security_page, methods=["GET"], name="security"),
    Route("/security/two-factor", two_factor.confirm, methods=["POST"]),
    Route("/security/recovery-codes", two_factor.new_recovery_codes, methods=["POST"]),
    Route("/security/two-factor/off", two_factor.turn_off, methods=["POST"]),
    Route("/team-security", two_factor.team_page, methods=["GET"], name="team_security"),
    Route("/team-security/required", two_factor.set_required, methods=["POST"]),
    Route("/team-security/{agent_id:id}/reset", two_factor.reset, methods=["POST"]),
]

routes: list = [
    Mount(
        "/console",
        name="console",
        middleware=[Middleware(SecurityHeaders)],
        routes=[
            Route("/", views.inbox, methods=["GET"], name="inbox"),
            Route("/login", login.login_page, methods=["GET"], name="login_page"),
            Route("/login", login.login, methods=["POST"], name="login"),
            Route("/logout", login.logout, methods=["POST"], name="logout"),
            Route(
                "/conversations/{conversation_id:id}",
                views.conversation_page,
                methods=["GET"],
                name="conversation",
            ),
            Route(
                "/conversations/{conversation_id:id}/messages",
                views.api_messages,
                methods=["GET"],
                name="messages",
            ),
            Route(
                "/conversations/{conversation_id:id}/messages",
                views.post_message,
                methods=["POST"],
                name="post_message",
            ),
            Route(
                "/conversations/{conversation_id:id}/assign",
                views.assign,
                methods=["POST"],
                name="assign",
            ),
            Route(
                "/conversations/{conversation_id:id}/status",
                views.set_status,
                methods=["POST"],
                name="status",
            ),
            Route("/api/conversations", views.api_conversations, methods=["GET"], name="api"),
            *agent_routes,
            Route("/audit", audit.audit_page, methods=["GET"], name="audit"),
            # Teams and who works in which inbox (agent_console/teams.py)
            Route("/teams", teams.teams_page, methods=["GET"], name="teams"),
            Route("/teams", teams.create_team, methods=["POST"]),
            Route("/teams/{team_id:id}", teams.update_team, methods=["POST"]),
            Route("/inboxes/{inbox_id:id}/members", teams.set_inbox_members, methods=["POST"]),
            *website_routes,
            # Live visitors and campaigns (agent_console/visitors.py)
            Route("/visitors", visitors.visitors_page, methods=["GET"], name="visitors"),
            Route("/api/visitors", visitors.api_visitors, methods=["GET"]),
            Route("/api/visitors/{visitor_id}", visitors.api_visitor, methods=["GET"]),
            Route("/visitors/{visitor_id}/chat", visitors.start_chat, methods=["POST"]),
            Route("/campaigns", visitors.campaigns_page, methods=["GET"], name="campaigns"),
            Route("/campaigns", visitors.create_campaign, methods=["POST"]),
            Route("/campaigns/{campaign_id:id}", visitors.campaign_page, methods=["GET"]),
            Route("/campaigns/{campaign_id:id}", visitors.update_campaign, methods=["POST"]),
            Route("/inboxes/{inbox_id:id}/hours", visitors.set_hours, methods=["POST"]),
            *call_routes,
            *email_routes,
            *two_factor_routes,
            WebSocketRoute("/ws", console_socket, name="socket"),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ],
    )
]
