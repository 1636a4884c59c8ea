//! Paginated listings of a tenant's live rows.

use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::{Store, StoreResult, on_pool};
use crate::model::{Page, PageRequest};

impl Store {
    /// One page of `table`'s live rows of `tenant_id`, ordered by `order`,
    /// with the total count.
    pub(crate) async fn page_of<T>(
        &self,
        table: &str,
        columns: &str,
        order: &str,
        tenant_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Page<T>>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let list = format!(
            "SELECT {columns} FROM {table} WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY {order} LIMIT $2 OFFSET $3"
        );
        let count =
            format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1 AND deleted_at IS NULL");
        on_pool!(&self.db, |pool| {
            let data = sqlx::query_as::<_, T>(&list)
                .bind(tenant_id)
                .bind(page.per_page)
                .bind(page.offset())
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) = sqlx::query_as(&count)
                .bind(tenant_id)
                .fetch_one(pool)
                .await?;
            Ok(Page {
                data,
                page: page.page,
                per_page: page.per_page,
                total,
            })
        })
    }
}
