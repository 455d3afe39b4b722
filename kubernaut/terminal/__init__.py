"""The ``kubernaut`` CLI's terminal side: rendering the API's answers with rich, and following them live."""
