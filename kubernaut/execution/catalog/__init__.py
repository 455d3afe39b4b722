"""execution/catalog"""
