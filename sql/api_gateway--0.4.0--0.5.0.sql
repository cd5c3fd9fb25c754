-- api_gateway 0.4.0 -> 0.5.0. Each section names the work it belongs to; every statement here
-- has its twin in src/sql/*.sql (fresh install), and tests/upgrade/check.sh proves both equal.
\echo Use "ALTER EXTENSION api_gateway UPDATE TO '0.5.0'" to load this file. \quit
