"""The monitoring loop: what arrived since the last run -> trust metrics -> control charts -> alerts."""
