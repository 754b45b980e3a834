# The English texts of every page the gateway serves, in Project Fluent's format
# (https://projectfluent.org/fluent/guide/). English is chosen with ?lang=en (remembered) or by
# the browser's Accept-Language.
#
# For translators: change the words right of `=`; keep the ids left of `=`, the attribute
# names (`.title`, `.body`, `.next`) and the variables in braces (`{ $app }`) as they are.
# sl.ftl must have the same ids: the gateway refuses to start when an id is missing in either
# file, or when a text names a variable the gateway does not give it. A directory named by
# `login.templates` may hold its own en.ftl (and sl.ftl) in place of this one.

## On every page

brand = Secure Web Gateway
support = Support
request_id = Request ID
status_code = Status

## The login page and the login host's home

welcome = Welcome to the Bankart login page
tagline = Bankart's web applications let you work with your clients more easily, faster and more efficiently.
choose = Choose how to log in
help = Help
rekono = Log in with a Rekono account
rekono_instructions = Instructions for creating a Rekono account
certificate = Log in with a certificate
certificate_instructions = Instructions for logging in with a certificate
logging_in_to = Logging in to
apps_title = Applications
apps_intro = These are the applications you can log in to with a Rekono account:
own_login_note = a Rekono account, then the application's own username and password
own_login_follows = After the gateway's login, log in to the application with its own username and password.
signed_in = You are logged in
user = User
user_id = Identity
method = Login method
level = Level of assurance
logout = Log out
# How the person logged in, on the home.
method_rekono = Rekono account
method_certificate = Certificate
notice_expired = Your session has expired. Please log in again.
notice_form_not_kept = The form you sent could not be kept. Please send it again after logging in.
# The link from the logout question to the sessions page.
my_sessions = Your sessions

## Buttons and notes of the message pages

try_again = Try again
back_to = Back to { $app }
to_applications = To the list of applications
back_to_login_page = Back to the login page
continue_at_rekono = Continue at Rekono
# Why Rekono refused a login (Rekono's own words are never shown).
refusal_too_many_attempts = The password was typed wrongly too many times, so Rekono stopped the login. Check your e-mail address and password and log in again; if you have forgotten the password, reset it at Rekono.
refusal_not_confirmed = The login was not confirmed at Rekono (for example a rejected OnePass notification, or too many wrong one-time passwords).
refusal_refused = Rekono refused the login.
level_too_low_for = { $app } needs level of assurance { $level }; your Rekono account does not have it.
step_up_needs = { $app } needs level of assurance { $level }.
step_up_needs_have = { $app } needs level of assurance { $level }; your session has level { $have }.
too_many_requests_wait = Too many login requests came from your address or with this certificate in a short time. You can try again in { $wait } s.

## Why a certificate was refused, in words a bank clerk understands

certificate_refusal_no_certificate = Your browser sent no certificate. Choose one when the browser asks.
certificate_refusal_expired = The certificate has expired.
certificate_refusal_not_yet_valid = The certificate is not valid yet.
certificate_refusal_issuer_expired = The issuer's certificate has expired (an intermediate or root authority on the chain).
certificate_refusal_issuer_not_yet_valid = The issuer's certificate is not valid yet (an intermediate or root authority on the chain).
certificate_refusal_chain_invalid = The certificate chain could not be verified.
certificate_refusal_not_verified = The certificate was not verified on this connection. Close the browser and try again.
certificate_refusal_untrusted = The certificate was not issued by an authority the gateway trusts.
certificate_refusal_bad_signature = The certificate's signature does not match the issuer the gateway trusts (possibly an impostor authority).
certificate_refusal_revoked = The certificate has been revoked.
certificate_refusal_not_for_client_auth = The certificate is not meant for logging in (client authentication).
certificate_refusal_policy_not_allowed = This certificate's policy is not allowed.
certificate_refusal_unknown_critical_extension = The certificate has an unknown critical extension.
certificate_refusal_chain_too_deep = The certificate chain is too long.
certificate_refusal_revoked_ocsp = The certificate has been revoked (OCSP).
certificate_refusal_revocation_unknown = The certificate's revocation status cannot be checked right now.
certificate_refusal_unreadable = The certificate could not be read.
certificate_refusal_user_not_allowed = This certificate's user has no access to the application.

## The login host's message pages: the title, what happened, what to do next

login_failed =
    .title = The login failed
    .body = The login could not be completed: the identity provider's answer is not valid or has expired.
    .next = Please log in again.
denied =
    .title = The login was refused
    .body = Rekono did not confirm the login.
    .next = Try again, or contact support.
level_too_low =
    .title = Level of assurance too low
    .body = The application requires a higher level of assurance than your Rekono account has.
    .next = Raise your Rekono account's level of assurance, or log in with a certificate.
rekono_unavailable =
    .title = Rekono is not available
    .body = The Rekono identity provider is not answering.
    .next = Try again in a few minutes, or log in with a certificate.
bad_return =
    .title = Invalid address
    .body = The address to return to is not one of Bankart's applications.
    .next = Open the application directly, e.g. https://acq.bankart.si/.
logged_out =
    .title = You are logged out
    .body = Your session at the Bankart Secure Web Gateway has ended.
    .next = Open an application to log in again.
method_not_allowed =
    .title = Login method not allowed
    .body = This application does not accept this way of logging in.
    .next = Log out and log in another way.
certificate_not_yet =
    .title = Certificate login is not available yet
    .body = Certificate login is not enabled on this gateway yet.
    .next = Log in with a Rekono account.
not_found =
    .title = No such page
    .body = There is no such page on the login host.
    .next = Open the application you want to log in to.
user_not_allowed =
    .title = Access not allowed
    .body = Your user has no access to this application.
    .next = If you think you should, contact support.
certificate_refused =
    .title = Certificate login failed
    .body = The certificate could not be accepted.
    .next = Check that you chose the right certificate, or log in with a Rekono account.
logout_confirm =
    .title = Log out
    .body = Do you want to log out of the Bankart Secure Web Gateway? Logging out ends your session in every application.
    .next = Log out
logout_refused =
    .title = The logout was not confirmed
    .body = The logout request did not come from the gateway's logout page, so your session stays open.
    .next = To log out, open the logout page and confirm.
step_up_other_user =
    .title = You logged in as another user
    .body = At Rekono you logged in with another account than the one logged in at the gateway. You did not get the higher level of assurance; your session is as it was.
    .next = For the higher level, log in with the same Rekono account. To log in as someone else, log out first.
too_many_requests =
    .title = Too many login attempts
    .body = Too many login requests came from your address or with this certificate in a short time.
    .next = Wait a moment and try again.
step_up =
    .title = The application needs a higher level of assurance
    .body = The application needs a higher level of assurance than your session has.
    .next = At Rekono, confirm the login with a method that meets the level asked; your e-mail address is filled in.
fresh_login_required =
    .title = The login must be confirmed again
    .body = Because all your sessions were ended, Rekono must confirm the login again with your password and second factor. It did not, so the login was not accepted.
    .next = Log in again; if this happens again, contact support.

## The gateway's own error pages on any host

error_bad_request =
    .title = Bad request
    .body = Your browser sent a request the gateway cannot understand.
    .next = Reload the page or open it again.
error_misdirected =
    .title = No application at this address
    .body = The Bankart Secure Web Gateway serves no application at this address.
    .next = Check the address, e.g. https://acq.bankart.si/.
error_upstream_unavailable =
    .title = The application is not available
    .body = The application behind the gateway is not answering.
    .next = Try again in a few minutes.
error_upstream_timeout =
    .title = The application did not answer in time
    .body = The application behind the gateway took too long to answer.
    .next = Try again in a few minutes.
error_internal =
    .title = Gateway error
    .body = Something went wrong while handling your request.
    .next = Please try again.
error_method_not_allowed =
    .title = Request not allowed
    .body = The application behind the gateway does not take this kind of request.
    .next = Open the page from within the application.
error_busy =
    .title = The gateway is busy
    .body = The gateway cannot take the data you sent right now.
    .next = Try again in a few seconds.

## The sessions page (/sessions on the login host)

sessions_title = Your sessions
sessions_intro = The sessions you are logged in to the Bankart portals with. End any you do not recognise: your next login then asks Rekono for your password again, even if you are logged in there.
sessions_refused = The request could not be verified. Please try again from this page.
sessions_when = Logged in
sessions_method = Method
sessions_level = Level
sessions_seen = Last seen
sessions_this = this session
sessions_end_one = End this session
sessions_end_all = End all sessions
sessions_back = Back
sessions_method_rekono = Rekono
sessions_method_certificate = certificate

## The page that sends a form kept across the login again

resubmit_title = Logged in
resubmit_body = You are logged in. Sending the form you filled in before.
resubmit_continue = Continue
