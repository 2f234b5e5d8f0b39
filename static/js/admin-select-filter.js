// Django's SelectFilter2.js (the admin's two-box picker) names its search icons with aria-label on a bare <span>,
// which ARIA does not allow on an element without a role; as images they are valid, named icons. SelectFilter draws
// the boxes on window load, before this listener (this file comes after it in the form's media).
window.addEventListener("load", () => {
  for (const icon of document.querySelectorAll(".selector .search-label-icon[aria-label]")) {
    icon.setAttribute("role", "img");
  }
});
