"""Moving an account's stamps in and out: ``stampbook import`` and ``export``
(CSV or JSON Lines of stamp objects), for a migration from the hosted service
or between Stampbook servers."""
