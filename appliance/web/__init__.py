"""HTTP: the JSON API, pages, authentication and error rendering."""
