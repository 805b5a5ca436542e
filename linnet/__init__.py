"""LinNét: hierarchical product categorisation."""
