// The round page without reloads: votes go to the API and the next proposal appears at once;
// the proposal form counts characters and shows similar published proposals as you type.
// Without this script the same forms post to the pages and everything still works.
(function () {
  "use strict";
  var zone = document.getElementById("vote");
  var form = document.getElementById("vote-form");
  var numbers = new Intl.NumberFormat(document.documentElement.lang || "en");

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return values[name]; });
  }

  function csrfToken(container) {
    var field = container.querySelector("input[name=_csrf_token]");
    return field ? field.value : "";
  }

  // A vote's request body is padded to one length: its size on the network must not tell how the person voted
  // ("agree" is shorter than "disagree", a nuance longer than none), as every answer has one size.
  var BALLOT_BYTES = 160;
  function padded(ballot) {
    ballot.padding = "";
    ballot.padding = new Array(Math.max(0, BALLOT_BYTES - JSON.stringify(ballot).length) + 1).join(" ");
    return ballot;
  }

  function api(method, path, body, token) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = token;
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (problem) {
          var error = new Error(problem.detail || String(response.status));
          error.status = response.status;
          error.wait = response.status === 429 ? response.headers.get("Retry-After") : null;
          throw error;
        });
      }
      return response.json();
    });
  }

  if (zone && form) {
    var round = zone.dataset.round;
    var card = document.getElementById("card");
    var text = document.getElementById("card-text");
    var proposalField = document.getElementById("card-proposal");
    var done = document.getElementById("card-done");
    var status = document.getElementById("vote-status");
    var progress = document.getElementById("progress");
    var progressText = document.getElementById("progress-text");
    var voted = parseInt(zone.dataset.voted, 10) || 0;
    var remaining = parseInt(zone.dataset.remaining, 10) || 0;
    var busy = false;
    // The proposal just voted on, which "Change this vote" brings back; `again`: the card shows it, and a vote
    // there replaces the one given (the appliance keeps one vote per proposal) without counting a new one.
    var changeButton = document.getElementById("vote-change");
    var last = null;
    var again = false;
    var SETTLE_MS = 500;
    var settled = null;
    // The rest of the sequence the page was drawn with: asking for another on load could draw another proposal
    // of a group of near-duplicates than the one on the card, and ask the same question twice.
    var given = document.getElementById("sequence-rest");
    var queue = given ? JSON.parse(given.textContent) : [];

    var showProgress = function () {
      progress.max = Math.max(1, voted + remaining);
      progress.value = voted;
      progressText.textContent = fill(zone.dataset.progress, { voted: numbers.format(voted), left: numbers.format(remaining) });
    };

    // The card's buttons take no tap for a moment: after a new proposal comes, or after a longer message above
    // the card moved it down, a tap aimed at where a button was would land on another.
    var settle = function () {
      card.classList.add("settling");
      clearTimeout(settled);
      settled = setTimeout(function () { card.classList.remove("settling"); }, SETTLE_MS);
    };

    var leaveCard = function () {
      // Hiding the card takes the focus with it: give it to the status line, which says why.
      var focused = card.contains(document.activeElement);
      proposalField.value = "";
      card.classList.add("hidden");
      if (focused) { status.focus(); }
    };

    var show = function (proposal) {
      if (!proposal) {
        card.classList.add("hidden");
        done.classList.remove("hidden");
        document.getElementById("done-all").classList.toggle("hidden", voted === 0);
        document.getElementById("done-none").classList.toggle("hidden", voted !== 0);
        if (card.contains(document.activeElement)) { done.focus(); }  // the focused button is gone
        return;
      }
      var focused = card.contains(document.activeElement);
      proposalField.value = proposal.id;
      text.textContent = proposal.text;
      card.classList.remove("hidden");
      done.classList.add("hidden");
      if (focused) { text.focus(); }  // a screen reader reads the new proposal before the next vote
      // A second tap of a double tap would vote on this proposal unread: its buttons take no tap for a moment.
      settle();
    };

    var refill = function () {
      return api("GET", "/api/v1/rounds/" + round + "/sequence").then(function (sequence) {
        voted = sequence.voted;
        remaining = sequence.remaining;
        queue = sequence.proposals.filter(function (p) { return p.id !== proposalField.value; });
        showProgress();
        return sequence.proposals;
      });
    };

    var next = function () {
      if (queue.length) {
        show(queue.shift());
        return Promise.resolve();
      }
      return refill().then(function (proposals) {
        queue = proposals.slice();
        show(queue.shift());
      });
    };

    // A vote given from a similar-proposal hint: that proposal leaves the queue (or the card), and the progress
    // is read again from the appliance (the hint may have been voted on before: the server counts it once).
    document.addEventListener("appliance:voted", function (event) {
      var id = event.detail;
      queue = queue.filter(function (p) { return p.id !== id; });
      api("GET", "/api/v1/rounds/" + round + "/sequence").then(function (sequence) {
        voted = sequence.voted;
        remaining = sequence.remaining;
        showProgress();
      }).catch(function () {});
      if (proposalField.value === id && !busy) {
        if (again) {  // the vote being changed was just given from the hint: nothing left to change here
          again = false;
          status.textContent = "";
        }
        next().catch(leaveCard);
      }
    });

    var vote = function (choice) {
      if (busy || !proposalField.value) { return; }
      busy = true;
      var parts = choice.trim().split(":");  // "agree:" with the spaces that give every button one length
      var body = padded({ proposal: proposalField.value, vote: parts[0], qualification: parts[1] || null });
      card.classList.add("sending");
      var votedOn = { id: proposalField.value, text: text.textContent };
      api("POST", "/api/v1/rounds/" + round + "/ballots", body, csrfToken(form)).then(function () {
        if (!again) {
          voted += 1;
          remaining = Math.max(0, remaining - 1);
        }
        showProgress();
        again = false;
        last = votedOn;
        changeButton.classList.remove("invisible");
        var said = zone.dataset["vote_" + parts[0]] || parts[0];
        if (parts[1]) {  // the nuance too, so that the voter knows it was taken
          said = fill(zone.dataset.nuanced, { vote: said, nuance: zone.dataset["nuance_" + parts[1]] || parts[1] });
        }
        var recorded = fill(zone.dataset.recorded, { vote: said });
        status.classList.remove("failed");
        status.textContent = "";
        status.textContent = recorded;
        return next().catch(function () {
          // The vote is in; only the next proposal is missing. No card is left whose buttons would change it.
          leaveCard();
          status.classList.add("failed");
          status.textContent = recorded + " " + zone.dataset.stalled;
        });
      }).catch(function (error) {
        // Every refusal is said in the page's language, never in the API's words. A request that got no
        // answer at all (no network) has no status.
        var said = zone.dataset["failed_" + (error.status || "offline")] || zone.dataset.failed_other;
        if (error.status === 404 || error.status === 409) {  // not the vote being changed: it is gone
          again = false;
        }
        if (error.status === 409) {  // the round takes no more votes: the vote before cannot be changed either
          last = null;
          changeButton.classList.add("invisible");
        }
        status.classList.add("failed");
        var top = card.getBoundingClientRect().top;
        status.textContent = error.wait ? fill(zone.dataset.throttled, { wait: numbers.format(error.wait) }) : said;
        if (card.getBoundingClientRect().top !== top) { settle(); }  // the message moved the card
        if (error.status === 404) {  // withdrawn: go on with the next proposal
          return next().catch(leaveCard);
        }
        if (error.status === 409) {  // the round takes no more votes: no card to press in vain
          leaveCard();
        }
      }).then(function () {
        busy = false;
        card.classList.remove("sending");
      });
    };

    changeButton.addEventListener("click", function () {
      if (busy || !last) { return; }
      if (proposalField.value && !card.classList.contains("hidden")) {  // the card shown comes back next
        queue.unshift({ id: proposalField.value, text: text.textContent });
      }
      again = true;
      show(last);
      last = null;
      changeButton.classList.add("invisible");
      status.classList.remove("failed");
      status.textContent = changeButton.dataset.changing;
      text.focus();  // the button is gone: a screen reader reads the proposal again
    });

    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (!submitter || !submitter.value) { return; }  // an old browser: let the form post
      event.preventDefault();
      vote(submitter.value);
    });

    document.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.ctrlKey || event.metaKey || event.altKey || card.classList.contains("hidden")) { return; }
      if (event.repeat || event.isComposing) { return; }  // a held key must not vote on cards nobody read
      if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) { return; }
      var button = form.querySelector("button.vote[data-key='" + event.key + "']");
      if (button) {
        event.preventDefault();
        vote(button.value);
      }
    });

  }

  var propose = document.getElementById("propose-form");
  if (propose) {
    var area = document.getElementById("proposal-text");
    var counter = document.getElementById("proposal-counter");
    var hints = document.getElementById("hints");
    var hintsList = document.getElementById("hints-list");
    var send = propose.querySelector("button[type=submit]");
    var max = parseInt(counter.dataset.max, 10);
    var min = parseInt(propose.dataset.min, 10) || 1;
    var timer = null;
    var asked = "";

    // The text as the server reads it: NFC, control and invisible format characters dropped (but the joiner
    // of emoji sequences and the tags of a subdivision flag), runs of white space as one space, trimmed.
    var invisible = /(?![\t\n\v\f\r\x1c-\x1f\x85\u200d\u{E0020}-\u{E007F}])[\p{Cc}\p{Cf}]/gu;
    var cleaned = function () {
      return area.value.normalize("NFC").replace(invisible, "").replace(/\s+/g, " ").trim();
    };
    // Its length as the server counts it: code points, not UTF-16 units.
    var length = function (text) {
      return Array.from(text).length;
    };

    var count = function () {
      var size = length(cleaned());
      counter.textContent = fill(counter.dataset.template, { count: numbers.format(size), max: numbers.format(max) });
      counter.classList.toggle("over", size > max);
    };

    // "Vote for them rather than repeat them": a hint takes an agree vote where it stands.
    var agreeButton = function (hint) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary small";
      button.textContent = hints.dataset.agree;
      button.addEventListener("click", function () {
        button.disabled = true;
        api("POST", "/api/v1/rounds/" + propose.dataset.round + "/ballots",
            padded({ proposal: hint.id, vote: "agree", qualification: null }), csrfToken(propose))
          .then(function () {
            var done = document.createElement("span");
            done.className = "small muted hint-done";
            done.setAttribute("role", "status");
            done.textContent = hints.dataset.agreed;
            button.replaceWith(done);
            document.dispatchEvent(new CustomEvent("appliance:voted", { detail: hint.id }));
          }).catch(function () {
            button.disabled = false;
            button.textContent = hints.dataset.agree_failed;
          });
      });
      return button;
    };

    var lookUp = function () {
      // A space after the last word says it is finished: "jours " is not on its way to "journaux".
      var draft = area.value.normalize("NFC").replace(/\s+/g, " ").replace(/^ /, "");
      var tooShort = length(cleaned()) < min;
      if (tooShort || draft === asked) {
        if (tooShort) {
          hints.classList.add("hidden");
          asked = "";
        }
        return;
      }
      asked = draft;
      api("POST", "/api/v1/rounds/" + propose.dataset.round + "/proposals/similar", { text: draft }, csrfToken(propose))
        .then(function (found) {
          if (asked !== draft) { return; }  // an older answer, arrived after a newer question
          hintsList.replaceChildren();
          found.slice(0, 3).forEach(function (hint) {
            var item = document.createElement("li");
            var words = document.createElement("span");
            words.className = "hint-text";
            words.textContent = hint.text;
            item.appendChild(words);
            if (hint.voted) {  // agreeing would change the vote given on the card, unseen: say it instead
              var already = document.createElement("span");
              already.className = "small muted";
              already.textContent = " " + hints.dataset.voted;
              item.appendChild(already);
            } else {
              item.appendChild(agreeButton(hint));
            }
            hintsList.appendChild(item);
          });
          hints.classList.toggle("hidden", found.length === 0);
        }).catch(function () {
          if (asked === draft) { hints.classList.add("hidden"); }
        });
    };

    var refusal = document.getElementById("proposal-error");
    area.addEventListener("input", function () {
      if (refusal) {  // it was about the text sent, no longer the one being typed
        refusal.remove();
        refusal = null;
        area.removeAttribute("aria-invalid");
        area.setAttribute("aria-describedby", "proposal-rules");
      }
      count();
      clearTimeout(timer);
      timer = setTimeout(lookUp, 400);
    });
    // A double tap must not send the proposal twice; back to the page (back button), the button works again.
    propose.addEventListener("submit", function () {
      send.disabled = true;
    });
    window.addEventListener("pageshow", function () {
      send.disabled = false;
    });
    // Switching the language reloads the page: the draft goes along, kept in this tab only until the page in
    // the other language takes it back, read once and removed, and only within seconds (never for whoever
    // uses this tab next).
    var carried = "appliance:draft:" + propose.dataset.round;
    var languageForm = document.querySelector("form.lang");
    var comesBack = languageForm && languageForm.elements.next &&
      languageForm.elements.next.value.split("?")[0] === "/rounds/" + propose.dataset.round;
    if (comesBack) {  // only when the page in the other language is this round's, which takes the draft back
      languageForm.addEventListener("submit", function () {
        try {
          if (area.value.trim()) { sessionStorage.setItem(carried, JSON.stringify({ text: area.value, at: Date.now() })); }
        } catch (ignored) { /* storage off: the draft is lost, as without this script */ }
      });
    }
    try {
      var kept = JSON.parse(sessionStorage.getItem(carried) || "null");
      sessionStorage.removeItem(carried);
      if (kept && Date.now() - kept.at < 20000 && !area.value) { area.value = kept.text; }
    } catch (ignored) { /* storage off, or not ours */ }
    count();
  }
}());
