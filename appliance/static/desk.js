// After a decision the desk opens at its list (the #desk anchor, which keeps the notice in view): the keyboard
// focus goes to the next proposal, not its Accept button, so that a second Enter never accepts it unread.
// On "load": the browser's own scrolling to the anchor comes first and would leave the focus on the page.
window.addEventListener("load", () => {
  const next = document.querySelector("[data-next]");
  if (next) next.focus({ preventScroll: true });
});
