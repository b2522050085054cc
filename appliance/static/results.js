// A printed results page shows the representative estimates and how proposals are ranked, folded on screen.
window.addEventListener("beforeprint", () => {
  for (const details of document.querySelectorAll("details.estimates, details.zones-help")) details.open = true;
});
