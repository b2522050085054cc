// A printed results page shows the representative estimates, folded on screen.
window.addEventListener("beforeprint", () => {
  for (const details of document.querySelectorAll("details.estimates")) details.open = true;
});
