// After a decision the desk opens at its list (the #desk anchor, which keeps the notice in view): the keyboard
// focus goes to the next proposal, not its Accept button, so that a second Enter never accepts it unread.
// On "load": the browser's own scrolling to the anchor comes first and would leave the focus on the page.
window.addEventListener("load", () => {
  const next = document.querySelector("[data-next]");
  if (next) next.focus({ preventScroll: true });
});

// The desk's proposals are held for two minutes; while the moderator is at the page (in view, and they typed,
// clicked, tapped or scrolled in the last five minutes) the holds are renewed twice a minute, so that reading
// ten proposals never hands them to another moderator mid-decision (a renewal lost on the way is made up by
// the next). A desk left open overnight lets them go.
const desk = document.querySelector("[data-holds]");
const token = document.querySelector("input[name=_csrf_token]");
if (desk && token) {
  const RENEW_MS = 30_000;
  const IDLE_MS = 5 * 60_000;
  let active = Date.now();
  for (const kind of ["keydown", "pointerdown", "scroll", "input"]) {
    window.addEventListener(kind, () => { active = Date.now(); }, { capture: true, passive: true });
  }
  setInterval(() => {
    if (document.visibilityState !== "visible" || Date.now() - active > IDLE_MS) return;
    fetch(desk.dataset.holds, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token.value } })
      .catch(() => {});  // offline a moment: the next renewal tries again
  }, RENEW_MS);
}
