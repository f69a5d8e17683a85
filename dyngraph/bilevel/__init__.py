"""Bilevel road network design with a learned user-equilibrium surrogate."""
