# The Slovenian texts of every page the gateway serves, in Project Fluent's format
# (https://projectfluent.org/fluent/guide/). Slovenian is the default language.
#
# For translators: change the words right of `=`; keep the ids left of `=`, the attribute
# names (`.title`, `.body`, `.next`) and the variables in braces (`{ $app }`) as they are.
# en.ftl must have the same ids: the gateway refuses to start when an id is missing in either
# file, or when a text names a variable the gateway does not give it. A directory named by
# `login.templates` may hold its own sl.ftl (and en.ftl) in place of this one.

## On every page

brand = Varni Spletni Prehod
support = Podpora
request_id = ID zahteve
status_code = Koda

## The login page and the login host's home

welcome = Pozdravljeni na prijavni strani Bankart
tagline = Bankartove spletne aplikacije vam omogočajo lažje, hitrejše ter bolj učinkovito poslovanje z vašimi komitenti.
choose = Izberite način prijave
help = Pomoč
rekono = Prijava z Rekono računom
rekono_instructions = Navodila za ustvarjanje Rekono računa
certificate = Prijava s certifikatom
certificate_instructions = Navodila za prijavo s certifikatom
logging_in_to = Prijava v
apps_title = Aplikacije
apps_intro = Aplikacije, pri katerih je prijava mogoča preko računa Rekono so naslednje:
own_login_note = Rekono račun in uporabniško ime ter geslo za prijavo v aplikacijo
own_login_follows = Po prijavi na prehodu se v aplikacijo prijavite še z njenim uporabniškim imenom in geslom.
signed_in = Prijavljeni ste
user = Uporabnik
user_id = Identiteta
method = Način prijave
level = Stopnja zaupanja
logout = Odjava
# How the person logged in, on the home.
method_rekono = Rekono račun
method_certificate = Certifikat
notice_expired = Vaša seja je potekla. Prijavite se znova.
notice_form_not_kept = Obrazca, ki ste ga poslali, ni bilo mogoče ohraniti. Po prijavi ga pošljite znova.
# The link from the logout question to the sessions page.
my_sessions = Vaše seje

## Buttons and notes of the message pages

try_again = Poskusite znova
back_to = Nazaj v { $app }
to_applications = Na seznam aplikacij
back_to_login_page = Nazaj na prijavno stran
continue_at_rekono = Nadaljuj pri Rekonu
# Why Rekono refused a login (Rekono's own words are never shown).
refusal_too_many_attempts = Geslo je bilo prevečkrat vpisano napačno, zato je Rekono prijavo prekinil. Preverite e-naslov in geslo ter se prijavite znova; če ste geslo pozabili, ga pri Rekonu ponastavite.
refusal_not_confirmed = Prijava pri Rekonu ni bila potrjena (na primer zavrnjeno obvestilo OnePass ali preveč napačnih enkratnih gesel).
refusal_refused = Rekono je prijavo zavrnil.
level_too_low_for = Aplikacija { $app } zahteva stopnjo zaupanja { $level }; vaš račun Rekono je nima.
step_up_needs = Aplikacija { $app } zahteva stopnjo zaupanja { $level }.
step_up_needs_have = Aplikacija { $app } zahteva stopnjo zaupanja { $level }, vaša seja ima stopnjo { $have }.
too_many_requests_wait = Z vašega naslova ali s tem certifikatom je v kratkem času prišlo preveč zahtev za prijavo. Znova lahko poskusite čez { $wait } s.

## Why a certificate was refused, in words a bank clerk understands

certificate_refusal_no_certificate = Brskalnik ni poslal certifikata. Izberite ga, ko vas brskalnik vpraša.
certificate_refusal_expired = Certifikat je potekel.
certificate_refusal_not_yet_valid = Certifikat še ni veljaven.
certificate_refusal_issuer_expired = Certifikat izdajatelja je potekel (vmesni ali korenski overitelj v verigi).
certificate_refusal_issuer_not_yet_valid = Certifikat izdajatelja še ni veljaven (vmesni ali korenski overitelj v verigi).
certificate_refusal_chain_invalid = Verige certifikatov ni bilo mogoče preveriti.
certificate_refusal_not_verified = Certifikat v tej povezavi ni bil preverjen. Zaprite brskalnik in poskusite znova.
certificate_refusal_untrusted = Certifikata ni izdal izdajatelj, ki mu prehod zaupa.
certificate_refusal_bad_signature = Podpis certifikata se ne ujema z izdajateljem, ki mu prehod zaupa (morda ponarejen izdajatelj).
certificate_refusal_revoked = Certifikat je preklican.
certificate_refusal_not_for_client_auth = Certifikat ni namenjen prijavi (overjanju odjemalca).
certificate_refusal_policy_not_allowed = Politika tega certifikata ni dovoljena.
certificate_refusal_unknown_critical_extension = Certifikat vsebuje neznano kritično razširitev.
certificate_refusal_chain_too_deep = Veriga certifikatov je predolga.
certificate_refusal_revoked_ocsp = Certifikat je preklican (OCSP).
certificate_refusal_revocation_unknown = Preklicnosti certifikata trenutno ni mogoče preveriti.
certificate_refusal_unreadable = Certifikata ni bilo mogoče prebrati.
certificate_refusal_user_not_allowed = Uporabnik tega certifikata nima dostopa do aplikacije.

## The login host's message pages: the title, what happened, what to do next

login_failed =
    .title = Prijava ni uspela
    .body = Prijave ni bilo mogoče dokončati: odgovor ponudnika identitete ni veljaven ali je potekel.
    .next = Poskusite se prijaviti znova.
denied =
    .title = Prijava je bila zavrnjena
    .body = Rekono prijave ni potrdil.
    .next = Poskusite znova ali se obrnite na podporo.
level_too_low =
    .title = Stopnja zaupanja je prenizka
    .body = Aplikacija zahteva višjo stopnjo zaupanja, kot jo ima vaš račun Rekono.
    .next = Zvišajte stopnjo zaupanja računa Rekono ali se prijavite s certifikatom.
rekono_unavailable =
    .title = Rekono trenutno ni dosegljiv
    .body = Ponudnik identitete Rekono se ne odziva.
    .next = Poskusite znova čez nekaj minut ali se prijavite s certifikatom.
bad_return =
    .title = Neveljaven naslov
    .body = Naslov, na katerega naj vas prehod vrne, ni ena od Bankartovih aplikacij.
    .next = Odprite aplikacijo neposredno, npr. https://acq.bankart.si/.
logged_out =
    .title = Odjavljeni ste
    .body = Vaša seja na Bankart Varnem Spletnem Prehodu je končana.
    .next = Za ponovno prijavo odprite aplikacijo.
method_not_allowed =
    .title = Način prijave ni dovoljen
    .body = Ta aplikacija ne sprejema tega načina prijave.
    .next = Odjavite se in se prijavite na drug način.
certificate_not_yet =
    .title = Prijava s certifikatom še ni na voljo
    .body = Prijava s certifikatom na tem prehodu še ni vključena.
    .next = Prijavite se z računom Rekono.
not_found =
    .title = Strani ni
    .body = Te strani na prijavnem naslovu ni.
    .next = Odprite aplikacijo, v katero se želite prijaviti.
user_not_allowed =
    .title = Dostop ni dovoljen
    .body = Vaš uporabnik nima dostopa do te aplikacije.
    .next = Če menite, da bi ga moral imeti, se obrnite na podporo.
certificate_refused =
    .title = Prijava s certifikatom ni uspela
    .body = Certifikata ni bilo mogoče sprejeti.
    .next = Preverite, da ste izbrali pravi certifikat, ali se prijavite z računom Rekono.
logout_confirm =
    .title = Odjava
    .body = Ali se želite odjaviti z Bankart Varnega Spletnega Prehoda? Odjava konča sejo v vseh aplikacijah.
    .next = Odjava
logout_refused =
    .title = Odjava ni bila potrjena
    .body = Zahteva za odjavo ni prišla z odjavne strani prehoda, zato vaša seja ostaja odprta.
    .next = Za odjavo odprite odjavno stran in jo potrdite.
step_up_other_user =
    .title = Prijavili ste se kot drug uporabnik
    .body = Pri Rekonu ste se prijavili z drugim računom, kot je prijavljen na prehodu. Višje stopnje zaupanja zato niste dobili; vaša seja ostaja taka, kot je bila.
    .next = Za višjo stopnjo se prijavite z istim računom Rekono. Če se želite prijaviti kot nekdo drug, se najprej odjavite.
too_many_requests =
    .title = Preveč poskusov prijave
    .body = Z vašega naslova ali s tem certifikatom je v kratkem času prišlo preveč zahtev za prijavo.
    .next = Počakajte nekaj trenutkov in poskusite znova.
step_up =
    .title = Aplikacija zahteva višjo stopnjo zaupanja
    .body = Aplikacija zahteva višjo stopnjo zaupanja, kot jo ima vaša seja.
    .next = Pri Rekonu potrdite prijavo z načinom, ki ustreza zahtevani stopnji; vaš e-naslov je že vpisan.
fresh_login_required =
    .title = Prijavo je treba znova potrditi
    .body = Ker so bile vse vaše seje končane, mora Rekono prijavo znova potrditi z geslom in drugim dejavnikom. Tega ni storil, zato prijava ni bila sprejeta.
    .next = Prijavite se znova; če se to ponovi, se obrnite na podporo.

## The gateway's own error pages on any host

error_bad_request =
    .title = Napačna zahteva
    .body = Brskalnik je poslal zahtevo, ki je prehod ne razume.
    .next = Osvežite stran ali jo odprite znova.
error_misdirected =
    .title = Na tem naslovu ni aplikacije
    .body = Bankart Varni Spletni Prehod na tem naslovu ne streže nobene aplikacije.
    .next = Preverite naslov, npr. https://acq.bankart.si/.
error_upstream_unavailable =
    .title = Aplikacija trenutno ni dosegljiva
    .body = Aplikacija za prehodom se ne odziva.
    .next = Poskusite znova čez nekaj minut.
error_upstream_timeout =
    .title = Aplikacija se ni odzvala pravočasno
    .body = Aplikacija za prehodom je za odgovor potrebovala predolgo.
    .next = Poskusite znova čez nekaj minut.
error_internal =
    .title = Napaka prehoda
    .body = Pri obdelavi zahteve je prišlo do napake.
    .next = Poskusite znova.
error_method_not_allowed =
    .title = Zahteva ni dovoljena
    .body = Aplikacija za prehodom ne sprejema te vrste zahteve.
    .next = Odprite stran iz aplikacije same.
error_busy =
    .title = Prehod je trenutno preobremenjen
    .body = Prehod trenutno ne more sprejeti poslanih podatkov.
    .next = Poskusite znova čez nekaj sekund.

## The sessions page (/sessions on the login host)

sessions_title = Vaše seje
sessions_intro = Seje, v katerih ste prijavljeni v Bankartove portale. Sejo, ki je ne prepoznate, končajte: vaša naslednja prijava bo nato zahtevala ponovno prijavo pri Rekonu (geslo), tudi če ste tam že prijavljeni.
sessions_refused = Zahteve ni bilo mogoče preveriti. Poskusite znova s te strani.
sessions_when = Prijava
sessions_method = Način
sessions_level = Raven
sessions_seen = Nazadnje aktivna
sessions_this = ta seja
sessions_end_one = Končaj to sejo
sessions_end_all = Končaj vse seje
sessions_back = Nazaj
sessions_method_rekono = Rekono
sessions_method_certificate = potrdilo

## The page that sends a form kept across the login again

resubmit_title = Prijava uspela
resubmit_body = Prijava je uspela. Pošiljamo obrazec, ki ste ga izpolnili pred prijavo.
resubmit_continue = Nadaljuj
