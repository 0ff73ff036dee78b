"""The API's answers as models: what the OpenAPI description shows (and what responses are checked against)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ItemHit(BaseModel):
    id: int
    url: str
    source: str
    title: str
    published: datetime | None = Field(description="Publication date (ISO 8601), if the page gave a trusted one.")
    first_seen: datetime
    updated: datetime | None = Field(None, description="When the stored text last changed.")
    topics: list[str]
    story: int | None = Field(description="The id shared by every copy of one story.")
    lang: str | None = Field(description="ISO 639-1 code, or null.")
    text: str = Field(description="The extracted article text.")
    snippet: str = Field(description="HTML-safe excerpt, the query's terms in <mark>.")


class ItemsPage(BaseModel):
    items: list[ItemHit]
    next: str | None = Field(description="Opaque cursor for the next page (pass it back as ?cursor=), or null.")
    total: int | None = Field(
        None, description="How many items match in all; null above 10,000, or for a query not counted (a common "
                          "phrase on PostgreSQL, words matching over 20,000 items with filters on SQLite).")


class StoryCopy(BaseModel):
    id: int
    source: str
    url: str
    title: str
    lang: str | None
    published: datetime | None
    first_seen: datetime


class StoryHit(BaseModel):
    story: int
    title: str
    published: datetime = Field(description="The newest copy's date.")
    first: int | None = Field(description="The id of the copy published first.")
    topics: list[str]
    sources: list[str]
    copies: list[StoryCopy]


class StoriesPage(BaseModel):
    stories: list[StoryHit]
    next: str | None
