//! Website visitors: each opens the booking form in a fresh browser (its own cookies), and posts it with the
//! form's CSRF token and idempotency key, retrying the same post through errors as a refresh does. Some come
//! back in another fresh browser for the same trip (must be told it is already booked), some double-click
//! Pay (both posts land on one booking), some pay with the declined card.

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;

use crate::api::answer_label;
use crate::record::{Answer, Attempt, Channel, Kind, Request};
use crate::stream::{Stream, ATTEMPT_DEADLINE};

/// One visitor after another until the stream stops.
pub async fn client(stream: Arc<Stream>) {
    while !stream.stopping() {
        stream.pace().await;
        let draw = rand::rng().random_range(0..100);
        let card = if draw >= 88 {
            Stream::declined_card()
        } else {
            Stream::good_card()
        };
        let trip = stream.new_trip(&stream.roomy_flight(), 1, card);
        let kind = if draw >= 88 {
            Kind::Declined
        } else {
            Kind::New
        };
        let mut browser = Browser::default();
        let mut visit = Visit::new(&stream);
        let Some(form) = visit.open_form(&mut browser, trip).await else {
            visit.finish(kind, trip, String::new(), None);
            continue;
        };
        let first = if (75..88).contains(&draw) {
            // A double click: two posts of one form, at once, from one browser.
            let mut twin = browser.clone();
            let mut other = Visit::new(&stream);
            other.started_ms = visit.started_ms;
            let (a, b) = tokio::join!(
                visit.submit(&mut browser, trip, &form),
                other.submit(&mut twin, trip, &form)
            );
            other.finish(Kind::DoubleClick, trip, form.key.clone(), Some(b));
            visit.finish(kind, trip, form.key.clone(), Some(a))
        } else {
            let answer = visit.submit(&mut browser, trip, &form).await;
            visit.finish(kind, trip, form.key.clone(), Some(answer))
        };
        if let Some(reference) = first.acknowledged() {
            if rand::rng().random_bool(0.2) {
                // The same traveller, flight and card from a fresh browser.
                let mut fresh = Browser::default();
                let mut again = Visit::new(&stream);
                let kind = Kind::Duplicate {
                    of: reference.to_owned(),
                };
                match again.open_form(&mut fresh, trip).await {
                    Some(form) => {
                        let answer = again.submit(&mut fresh, trip, &form).await;
                        again.finish(kind, trip, form.key.clone(), Some(answer));
                    }
                    None => {
                        again.finish(kind, trip, String::new(), None);
                    }
                }
            }
        }
    }
}

/// A browser's cookie jar: the session and CSRF cookies, sent back as it got them.
#[derive(Clone, Default)]
struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            let pairs: Vec<String> = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            pairs.join("; ")
        })
    }

    fn absorb(&mut self, headers: &reqwest::header::HeaderMap) {
        for set in headers.get_all(reqwest::header::SET_COOKIE) {
            let Ok(set) = set.to_str() else { continue };
            let pair = set.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() && !set.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }
}

/// The booking form as served: its CSRF token and idempotency key.
struct Form {
    csrf: String,
    key: String,
}

/// A page as the soak reads it.
struct Page {
    status: u16,
    location: Option<String>,
    html: String,
}

/// One attempt's requests, as they happen.
struct Visit<'a> {
    stream: &'a Stream,
    started: Instant,
    started_ms: u64,
    requests: Vec<Request>,
    avoid: Option<usize>,
}

impl<'a> Visit<'a> {
    fn new(stream: &'a Stream) -> Self {
        Self {
            stream,
            started: Instant::now(),
            started_ms: stream.record.now_ms(),
            requests: Vec::new(),
            avoid: None,
        }
    }

    /// Sends one request to a node; `None` (recorded) when the transport failed or no node was there.
    async fn send(
        &mut self,
        browser: &mut Browser,
        path: &str,
        form: Option<&[(String, String)]>,
    ) -> Option<Page> {
        let Some((node, base)) = self.stream.cluster.nodes.pick(self.avoid) else {
            self.stream.backoff().await;
            return None;
        };
        let url = format!("{base}{path}");
        let mut request = match form {
            Some(fields) => self.stream.http.post(&url).form(fields),
            None => self.stream.http.get(&url),
        };
        request = request.header("accept", "text/html");
        if let Some(cookies) = browser.header() {
            request = request.header("cookie", cookies);
        }
        let at_ms = self.stream.record.now_ms();
        let page = match request.send().await {
            Ok(response) => {
                browser.absorb(response.headers());
                let status = response.status().as_u16();
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .map(str::to_owned);
                response.text().await.ok().map(|html| Page {
                    status,
                    location,
                    html,
                })
            }
            Err(_) => None,
        };
        let outcome = page
            .as_ref()
            .map_or_else(|| "transport error".to_owned(), |p| p.status.to_string());
        self.requests.push(Request {
            at_ms,
            node,
            outcome,
        });
        if page.as_ref().is_none_or(|p| p.status >= 500) {
            self.avoid = Some(node);
        }
        page
    }

    fn expired(&self) -> bool {
        self.started.elapsed() > ATTEMPT_DEADLINE
    }

    /// GETs the booking form for the trip's flight until it is served.
    async fn open_form(&mut self, browser: &mut Browser, trip: usize) -> Option<Form> {
        let flight = self.stream.record.trip(trip).flight_id;
        while !self.expired() {
            if let Some(page) = self.send(browser, &format!("/book/{flight}"), None).await {
                if page.status == 200 {
                    let csrf = input(&page.html, "csrf")?;
                    let key = input(&page.html, "idempotency_key")?;
                    return Some(Form { csrf, key });
                }
            }
            self.stream.backoff().await;
        }
        None
    }

    /// Posts the form (again after an error, as a refresh does) until a final page.
    async fn submit(&mut self, browser: &mut Browser, trip: usize, form: &Form) -> Answer {
        let trip = self.stream.record.trip(trip);
        let mut fields = vec![
            ("csrf".to_owned(), form.csrf.clone()),
            ("idempotency_key".to_owned(), form.key.clone()),
        ];
        for (i, given) in trip.given_names.iter().enumerate() {
            fields.push((format!("passengers[{i}].given_name"), given.clone()));
            fields.push((
                format!("passengers[{i}].family_name"),
                trip.family_name.clone(),
            ));
        }
        fields.extend(
            [
                ("contact_email", trip.email.as_str()),
                ("card.number", trip.card),
                ("card.exp_month", "12"),
                ("card.exp_year", "2031"),
                ("card.cvc", "123"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let post = format!("/book/{}", trip.flight_id);
        let mut path = post.clone();
        let mut last = String::from("no answer");
        while !self.expired() {
            let posting = path == post;
            let page = self
                .send(browser, &path, posting.then_some(fields.as_slice()))
                .await;
            if let Some(page) = page {
                last = page.status.to_string();
                match read(&page) {
                    Read::Final(Answer::Booked { reference, .. }) => {
                        let shown = self.shown_status(browser, &reference).await;
                        return Answer::Booked {
                            status: 303,
                            reference,
                            shown,
                        };
                    }
                    Read::Final(answer) => return answer,
                    // A second click's post while the first pays: wait on the key's status page.
                    Read::Follow(to) => path = to,
                    Read::Again => {}
                    Read::Repost => path.clone_from(&post),
                }
            }
            self.stream.backoff().await;
        }
        Answer::Unanswered { last }
    }

    /// The status the booking's page shows (`confirmed`, `payment pending`...), if it can be read.
    async fn shown_status(&mut self, browser: &mut Browser, reference: &str) -> Option<String> {
        for _ in 0..3 {
            if let Some(page) = self
                .send(browser, &format!("/bookings/{reference}"), None)
                .await
            {
                if page.status == 200 {
                    return text_of_id(&page.html, "status");
                }
            }
            self.stream.backoff().await;
        }
        None
    }

    /// Records the attempt (`answer` `None`: the form never opened) and returns it.
    fn finish(self, kind: Kind, trip: usize, key: String, answer: Option<Answer>) -> Attempt {
        let answer = answer.unwrap_or_else(|| Answer::Unanswered {
            last: self
                .requests
                .last()
                .map_or_else(|| "no node".to_owned(), |r| r.outcome.clone()),
        });
        let mut requests = self.requests;
        if let Some(last) = requests.last_mut() {
            if !matches!(answer, Answer::Unanswered { .. }) {
                last.outcome = format!("{} ({})", last.outcome, answer_label(&answer));
            }
        }
        let attempt = Attempt {
            channel: Channel::Site,
            kind,
            key,
            trip,
            started_ms: self.started_ms,
            finished_ms: self.stream.record.now_ms(),
            requests,
            answer,
        };
        self.stream.record.push(attempt.clone());
        attempt
    }
}

enum Read {
    Final(Answer),
    Follow(String),
    Again,
    /// Send the form again (with the card).
    Repost,
}

/// What a page after the booking post says.
fn read(page: &Page) -> Read {
    let location = page.location.as_deref().unwrap_or_default();
    match page.status {
        303 if location.starts_with("/bookings/") => Read::Final(Answer::Booked {
            status: 303,
            reference: location["/bookings/".len()..].to_owned(),
            shown: None,
        }),
        303 if location.starts_with("/book/status/") => Read::Follow(location.to_owned()),
        // The status page while the first post is still paying: it refreshes itself.
        200 if page.html.contains("Confirming your payment") => Read::Again,
        // The request paying for it died with its node: the form again, the same key; a visitor pays again.
        200 if page.html.contains("was interrupted before it completed") => Read::Repost,
        409 if page.html.contains("id=\"reference\"") => {
            match text_of_id(&page.html, "reference") {
                Some(existing) => Read::Final(Answer::Duplicate { existing }),
                None => Read::Final(unexpected(page)),
            }
        }
        409 if page.html.contains("Not enough seats left") => Read::Final(Answer::SoldOut),
        402 => Read::Final(Answer::Declined { reference: None }),
        502 if page.html.contains("could not be completed") => {
            Read::Final(Answer::PaymentFailed { reference: None })
        }
        429 | 500..=599 => Read::Again,
        _ => Read::Final(unexpected(page)),
    }
}

fn unexpected(page: &Page) -> Answer {
    let main = page
        .html
        .find("<main")
        .map_or(page.html.as_str(), |at| &page.html[at..]);
    Answer::Unexpected {
        status: page.status,
        body: format!(
            "{} {}",
            page.location.as_deref().unwrap_or_default(),
            main.chars().take(300).collect::<String>()
        ),
    }
}

/// The `value` of the input named `name`.
fn input(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_end = at + html[at..].find('>')?;
    let value = html[at..tag_end].split(" value=\"").nth(1)?;
    Some(unescape(&value[..value.find('"')?]))
}

/// The text of the element with id `id`.
fn text_of_id(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let open_end = at + html[at..].find('>')? + 1;
    let close = open_end + html[open_end..].find('<')?;
    Some(unescape(html[open_end..close].trim()))
}

fn unescape(text: &str) -> String {
    text.replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}
