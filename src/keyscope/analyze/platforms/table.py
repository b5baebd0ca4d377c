"""The platforms whose tokens keyscope explains, as data: for each kind of token, what
it unlocks as the platform documents it, what its format says about its lifetime, the
read-only "who am I" request a live check sends (``verify/whoami.py``, with --verify),
and how to revoke it. ``tokens.py`` reads tokens; ``explainer.py`` turns a row and a token into an
``Explanation``."""

from __future__ import annotations

from dataclasses import dataclass

NO_EXPIRY = "no expiry in the token: it works until revoked"


@dataclass(frozen=True)
class TokenKind:
    """One kind of token of one platform."""

    kind: str  # Access.kind
    platform: str  # Access.provider
    platform_label: str
    label: str  # Access.kind_label
    rule: str  # the policy rule (platforms/policy.py) that rates it
    level: str  # Access.scope.level: principal | organization | channel
    unlocks: str  # what it unlocks, as the platform documents it
    revoke: str  # where and how its owner revokes it
    revoke_command: str | None = None  # a command or API call that revokes it
    whoami: str | None = None  # the read-only request that tells whose it is
    validity: str = NO_EXPIRY
    lifetime_seconds: int | None = None  # documented longest life, when the format tells
    services: tuple[str, ...] = ("all",)


def _github(kind: str, label: str, unlocks: str, *, whoami: str = "GET https://api.github."
            "com/user (Authorization: Bearer; X-OAuth-Scopes lists a classic token's scopes)",
            validity: str = NO_EXPIRY, lifetime: int | None = None,
            revoke: str = "the owner deletes it at https://github.com/settings/tokens (or the "
            "app's settings); anyone who finds it may revoke it through GitHub's credential "
            "revocation API, which notifies the owner") -> TokenKind:
    return TokenKind(
        kind, "github", "GitHub", label, "code-host-token", "principal", unlocks, revoke,
        revoke_command="curl -X POST https://api.github.com/credentials/revoke "
        "-d '{\"credentials\":[\"TOKEN\"]}' (unauthenticated)",
        whoami=whoami, validity=validity, lifetime_seconds=lifetime,
    )


def _gitlab(kind: str, label: str, unlocks: str, revoke: str,
            command: str | None = None) -> TokenKind:
    return TokenKind(
        kind, "gitlab", "GitLab", label, "code-host-token", "principal", unlocks, revoke,
        revoke_command=command,
        whoami="GET https://gitlab.com/api/v4/personal_access_tokens/self (PRIVATE-TOKEN "
        "header: scopes, expiry, user id)" if kind == "gitlab-access-token" else None,
        validity="expiry not in the token (GitLab access tokens expire at most a year after "
        "creation unless an administrator allows more)" if kind == "gitlab-access-token"
        else NO_EXPIRY,
    )


_OPENAI_WHOAMI = "GET https://api.openai.com/v1/models (Authorization: Bearer; no side effects)"
_ANTHROPIC_WHOAMI = ("GET https://api.anthropic.com/v1/models (x-api-key, anthropic-version: "
                     "2023-06-01)")
_SLACK_WHOAMI = "POST https://slack.com/api/auth.test (Authorization: Bearer: team, user, url)"
_SLACK_REVOKE = ("the token revokes itself: GET https://slack.com/api/auth.revoke with it; a "
                 "workspace admin can also remove or reinstall the app (https://api.slack.com/apps)")

KINDS: dict[str, TokenKind] = {k.kind: k for k in (
    TokenKind(
        "hf-user-token", "huggingface", "Hugging Face", "Hugging Face user access token",
        "platform-token", "principal",
        "acts as its user on the Hugging Face Hub: a read token reads every public and private "
        "model, dataset and Space the user and their organizations can read; a write token also "
        "pushes to them; a fine-grained token only what it was granted (the role is not in the "
        "token: the who-am-I request tells)",
        "delete or invalidate it at https://huggingface.co/settings/tokens",
        whoami="GET https://huggingface.co/api/whoami-v2 (Authorization: Bearer: user, "
        "organizations, token role)",
        services=("hub", "inference"),
    ),
    TokenKind(
        "hf-org-token", "huggingface", "Hugging Face", "Hugging Face organization API token "
        "(deprecated)", "platform-token", "organization",
        "acts for its organization on the Hugging Face Hub (organization tokens are deprecated)",
        "delete it in the organization's settings on https://huggingface.co",
        whoami="GET https://huggingface.co/api/whoami-v2 (Authorization: Bearer)",
        services=("hub",),
    ),
    TokenKind(
        "openai-project-key", "openai", "OpenAI", "OpenAI project API key", "platform-token",
        "principal",
        "calls the OpenAI API as its project (models, files, fine-tuning, assistants), billed "
        "to the organization, within the key's permissions (all, restricted or read-only: not "
        "in the key)",
        "delete it at https://platform.openai.com/api-keys (or the project's API keys page)",
        revoke_command="DELETE https://api.openai.com/v1/organization/projects/PROJECT_ID/"
        "api_keys/KEY_ID (with an admin key)",
        whoami=_OPENAI_WHOAMI, services=("api",),
    ),
    TokenKind(
        "openai-service-account-key", "openai", "OpenAI", "OpenAI service-account API key",
        "platform-token", "principal",
        "calls the OpenAI API as a project's service account, billed to the organization",
        "delete the service account or its key in the project's settings on "
        "https://platform.openai.com",
        revoke_command="DELETE https://api.openai.com/v1/organization/projects/PROJECT_ID/"
        "service_accounts/SERVICE_ACCOUNT_ID (with an admin key)",
        whoami=_OPENAI_WHOAMI, services=("api",),
    ),
    TokenKind(
        "openai-admin-key", "openai", "OpenAI", "OpenAI admin API key", "admin-key",
        "organization",
        "administers the OpenAI organization: its users, projects, API keys, rate limits and "
        "usage (the Administration API)",
        "delete it at https://platform.openai.com/settings/organization/admin-keys",
        revoke_command="DELETE https://api.openai.com/v1/organization/admin_api_keys/KEY_ID",
        whoami="GET https://api.openai.com/v1/organization/projects (admin key; no side effects)",
        services=("admin",),
    ),
    TokenKind(
        "openai-user-key", "openai", "OpenAI", "OpenAI API key (legacy user key)",
        "platform-token", "principal",
        "calls the OpenAI API as its user, in every organization and project the user belongs "
        "to, billed to them",
        "delete it at https://platform.openai.com/api-keys",
        whoami=_OPENAI_WHOAMI, services=("api",),
    ),
    TokenKind(
        "anthropic-api-key", "anthropic", "Anthropic", "Anthropic API key", "platform-token",
        "principal",
        "calls the Claude API (messages, files, batches) for its workspace, billed to the "
        "organization",
        "disable or delete it at https://console.anthropic.com/settings/keys",
        revoke_command="POST https://api.anthropic.com/v1/organizations/api_keys/KEY_ID "
        "{\"status\": \"inactive\"} (with an admin key)",
        whoami=_ANTHROPIC_WHOAMI, services=("api",),
    ),
    TokenKind(
        "anthropic-admin-key", "anthropic", "Anthropic", "Anthropic Admin API key", "admin-key",
        "organization",
        "administers the Anthropic organization: members, invites, workspaces and API keys",
        "delete it at https://console.anthropic.com/settings/admin-keys",
        whoami="GET https://api.anthropic.com/v1/organizations/me (x-api-key, "
        "anthropic-version: 2023-06-01)",
        services=("admin",),
    ),
    TokenKind(
        "wandb-api-key", "wandb", "Weights & Biases", "Weights & Biases API key",
        "platform-token", "principal",
        "acts as its user on Weights & Biases: reads and writes the runs, artifacts (datasets, "
        "models), reports and sweeps of every project the user and their teams can reach",
        "delete it at https://wandb.ai/settings (API keys)",
        whoami="POST https://api.wandb.ai/graphql {viewer {username email}} (basic auth "
        "api:KEY)", services=("api",),
    ),
    TokenKind(
        "kaggle-api-key", "kaggle", "Kaggle", "Kaggle API key (kaggle.json)", "platform-token",
        "principal",
        "acts as its user on Kaggle: downloads competition and private datasets, publishes "
        "datasets, models and notebooks, submits to competitions",
        "expire it at https://www.kaggle.com/settings (API: Expire Token)",
        whoami="GET https://www.kaggle.com/api/v1/competitions/list (basic auth "
        "USERNAME:KEY; Kaggle documents no who-am-I)", services=("api",),
    ),
    TokenKind(
        "kaggle-api-token", "kaggle", "Kaggle", "Kaggle API token (KGAT_)", "platform-token",
        "principal",
        "acts as its user on Kaggle (sent as a Bearer token, no username needed): downloads "
        "competition and private datasets, publishes datasets, models and notebooks",
        "expire it at https://www.kaggle.com/settings (API tokens)",
        whoami="GET https://www.kaggle.com/api/v1/competitions/list (Authorization: Bearer; "
        "Kaggle documents no who-am-I)", services=("api",),
    ),
    TokenKind(
        "replicate-api-token", "replicate", "Replicate", "Replicate API token", "platform-token",
        "principal",
        "runs models, trainings and deployments on Replicate as its account, billed to it, and "
        "reads its predictions (inputs and outputs)",
        "delete it at https://replicate.com/account/api-tokens",
        whoami="GET https://api.replicate.com/v1/account (Authorization: Bearer)",
        services=("api",),
    ),
    TokenKind(
        "databricks-token", "databricks", "Databricks", "Databricks personal access token",
        "platform-token", "principal",
        "calls the REST APIs of its workspace as its user: notebooks, jobs, clusters, SQL "
        "warehouses and the data the user can read through Unity Catalog",
        "revoke it in the workspace: Settings, Developer, Access tokens",
        revoke_command="databricks tokens delete TOKEN_ID (or POST /api/2.0/token/delete)",
        whoami="GET https://WORKSPACE/api/2.0/preview/scim/v2/Me (Authorization: Bearer)",
        validity="expiry not in the token (set when it was created; may be none)",
        services=("workspace",),
    ),
    _github("github-classic-token", "GitHub personal access token (classic)",
            "acts as its user on GitHub with the scopes chosen at creation (repo: every "
            "private repository the user can reach, read and write; workflow; packages; "
            "admin:org …); the scopes are not in the token"),
    _github("github-fine-grained-token", "GitHub fine-grained personal access token",
            "acts as its user on the repositories and with the permissions selected at "
            "creation (one owner; not in the token)",
            validity="unknown offline (fine-grained tokens carry no expiry; they may be set "
            "to expire)"),
    _github("github-oauth-token", "GitHub OAuth access token",
            "acts as the user who authorized an OAuth app, with the scopes granted to it"),
    _github("github-user-to-server-token", "GitHub App user access token",
            "acts as a user through a GitHub App, within both the app's and the user's rights",
            validity="at most 8 hours after it was issued (when the app lets tokens expire); "
            "the issue time is not in the token", lifetime=8 * 3600),
    _github("github-installation-token", "GitHub App installation access token",
            "acts as a GitHub App installation on the repositories it was installed on, with "
            "the app's permissions",
            whoami="GET https://api.github.com/installation/repositories (Authorization: Bearer)",
            validity="expires 1 hour after it was issued; the issue time is not in the token",
            lifetime=3600,
            revoke="DELETE https://api.github.com/installation/token with it, or suspend the "
            "installation"),
    _github("github-refresh-token", "GitHub App refresh token",
            "mints new user access tokens for a GitHub App user (with the app's client secret)",
            whoami="none without the app's client secret",
            validity="at most 6 months after it was issued; the issue time is not in the token",
            lifetime=183 * 86400),
    _gitlab("gitlab-access-token", "GitLab personal, project or group access token",
            "calls the GitLab API (and Git over HTTPS) as its user, project bot or group bot, "
            "with its scopes (api, read_repository, write_repository, …; not in the token)",
            "revoke it in User settings, Access tokens (or the project's or group's Access "
            "tokens)", "curl -X DELETE -H 'PRIVATE-TOKEN: TOKEN' "
            "https://gitlab.com/api/v4/personal_access_tokens/self"),
    _gitlab("gitlab-deploy-token", "GitLab deploy token",
            "clones or pulls the repository, container registry and package registry of its "
            "project or group (and pushes, with write scopes)",
            "revoke it in the project's Settings, Repository, Deploy tokens"),
    _gitlab("gitlab-runner-token", "GitLab runner authentication token",
            "registers as its runner and picks up CI jobs, with their job tokens and variables "
            "(secrets of the pipelines)",
            "delete the runner, or reset its token in CI/CD settings, Runners",
            "gitlab-runner unregister --all-runners (on the runner host)"),
    _gitlab("gitlab-runner-registration-token", "GitLab runner registration token "
            "(deprecated)", "registers new runners for its project, group or instance, which "
            "then receive CI jobs and their secrets",
            "reset it in CI/CD settings, Runners"),
    _gitlab("gitlab-trigger-token", "GitLab pipeline trigger token",
            "starts pipelines of its project as the token's owner, with chosen variables",
            "revoke it in the project's Settings, CI/CD, Pipeline trigger tokens"),
    _gitlab("gitlab-feed-token", "GitLab feed token",
            "reads its user's RSS/Atom feeds and calendar (issue and merge request titles of "
            "private projects)", "reset it in User settings, Access tokens, Feed token"),
    _gitlab("gitlab-incoming-email-token", "GitLab incoming email token",
            "creates issues and merge requests by email as its user",
            "reset it in User settings, Access tokens, Incoming email token"),
    _gitlab("gitlab-agent-token", "GitLab cluster agent token",
            "connects a Kubernetes agent to its project: GitLab sends it deployments and the "
            "cluster's CI access", "revoke it in Operate, Kubernetes clusters, the agent's "
            "Access tokens"),
    _gitlab("gitlab-oauth-secret", "GitLab OAuth application secret",
            "signs OAuth flows as its application (with its client id), minting tokens for "
            "users who authorize it", "renew the secret in the application's settings"),
    _gitlab("gitlab-scim-token", "GitLab SCIM token",
            "provisions and deprovisions the members of its group (SCIM API)",
            "reset it in the group's SAML SSO settings"),
    _gitlab("gitlab-ci-job-token", "GitLab CI/CD job token",
            "acts as the job's user on the resources the job token may reach, while its job "
            "runs", "it expires when its job ends; cancel the job to end it early"),
    TokenKind(
        "slack-bot-token", "slack", "Slack", "Slack bot token", "chat-token", "principal",
        "calls the Slack Web API as its app's bot user, with the scopes its app was granted "
        "(reading and posting in the channels the bot is in, …; not in the token)",
        _SLACK_REVOKE, whoami=_SLACK_WHOAMI, services=("web-api",),
    ),
    TokenKind(
        "slack-user-token", "slack", "Slack", "Slack user token", "chat-token", "principal",
        "calls the Slack Web API as the user who installed the app, with its scopes: it can "
        "read what that user can read (private channels, direct messages) and post as them",
        _SLACK_REVOKE, whoami=_SLACK_WHOAMI, services=("web-api",),
    ),
    TokenKind(
        "slack-app-token", "slack", "Slack", "Slack app-level token", "chat-token", "principal",
        "opens Socket Mode connections for its app (receives its events) and manages its "
        "event authorizations",
        "revoke it in the app's settings (Basic Information, App-Level Tokens) at "
        "https://api.slack.com/apps", whoami=_SLACK_WHOAMI, services=("web-api",),
    ),
    TokenKind(
        "slack-config-token", "slack", "Slack", "Slack app configuration token",
        "chat-token", "principal",
        "creates and changes the configuration of apps in its workspace (App Manifest API)",
        "revoke it at https://api.slack.com/apps (Your App Configuration Tokens)",
        whoami=_SLACK_WHOAMI, validity="expires 12 hours after it was issued; the issue time "
        "is not in the token", lifetime_seconds=12 * 3600, services=("web-api",),
    ),
    TokenKind(
        "slack-legacy-token", "slack", "Slack", "Slack legacy token", "chat-token", "principal",
        "calls the Slack Web API with the rights of a legacy workspace app or legacy user token",
        _SLACK_REVOKE, whoami=_SLACK_WHOAMI, services=("web-api",),
    ),
    TokenKind(
        "slack-webhook", "slack", "Slack", "Slack incoming webhook URL", "webhook-url",
        "channel",
        "posts messages (text, blocks, links) to the one channel it was created for, under "
        "its app's name; it cannot read anything",
        "remove the webhook in the app's Incoming Webhooks settings (or remove the app)",
        whoami="none that keyscope sends: the only check is a POST to it (an empty "
        "{\"text\": \"\"} is answered no_text while it is alive), and a post that is "
        "accepted sends a message",
        services=("incoming-webhook",),
    ),
    TokenKind(
        "power-automate-webhook", "microsoft-power-automate", "Microsoft Power Automate",
        "Power Automate / Logic Apps HTTP trigger URL (Teams Workflows webhook)",
        "webhook-url", "channel",
        "runs its flow with any request body: a Teams Workflows webhook posts the message to "
        "its channel as the flow's owner; other flows do whatever they were built to do",
        "delete the flow, or change its trigger so the URL (its sig=) is regenerated",
        whoami="none: any request to it that is accepted runs the flow",
        services=("incoming-webhook",),
    ),
    TokenKind(
        "teams-webhook", "microsoft-teams", "Microsoft Teams",
        "Microsoft Teams incoming webhook URL (Office 365 connector)", "webhook-url", "channel",
        "posts cards and messages to the one Teams channel it was created for; it cannot "
        "read anything (Office 365 connectors are being retired)",
        "remove the Incoming Webhook connector from the channel (Connectors, Configured)",
        whoami="none: any request to it that is accepted posts to the channel",
        services=("incoming-webhook",),
    ),
)}
